"""Depth, aliases, fields and cost of the operation a request runs, in one linear pass.

The counts are those of the document with every fragment expanded where it is spread.
Walking into each spread computes them in time exponential in the document when
spreads double at each level (a 1 KB document, 30 fragments each spreading the one
below twice, makes 2^30 walks); here each fragment is summarised once, after the
fragments it spreads (a topological order, so no recursion through fragments), and a
spread adds its summary. The work is linear in the document, the numbers saturate
instead of growing without end, and a fragment that spreads itself, directly or
through others, is refused without relying on validation having run.

Cost counts the objects an operation may resolve: an object-typed field counts 1 and
a scalar 0, and a list multiplies what it selects by its size: its ``first``, ``k`` or
``limit`` (from literals, variables, or the argument's default, capped as the resolvers
cap it), or, on a connection or a result object (``documents(first: 50)``,
``ask(k: 5)``), the size given to the field above it; a list without any size counts
``default_list_size`` items. Introspection lists count once: the introspection schema
is small, and the depth limit bounds its nesting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_composite_type,
    is_list_type,
)

from app.domain.errors import QueryTooComplexError
from graphql_schema.limits.budget import SIZE_ARGUMENTS, QueryLimits

_CEILING = 1 << 53
"""Counts stop here: far over any limit, and cheap to add and multiply."""


def _sat(value: int) -> int:
    return value if value < _CEILING else _CEILING


@dataclass(frozen=True, slots=True)
class OperationCost:
    depth: int
    aliases: int
    fields: int
    cost: int


@dataclass(slots=True)
class _Summary:
    """What a selection set adds where it appears."""

    depth: int = 0
    aliases: int = 0
    fields: int = 0
    cost: int = 0
    """Objects resolved whatever the size of the list above."""
    per_item: int = 0
    """Objects resolved per item of the list above (lists here that take no size)."""

    def add(self, other: _Summary) -> None:
        self.depth = max(self.depth, other.depth)
        self.aliases = _sat(self.aliases + other.aliases)
        self.fields = _sat(self.fields + other.fields)
        self.cost = _sat(self.cost + other.cost)
        self.per_item = _sat(self.per_item + other.per_item)

    def priced(self, items: int) -> int:
        """The cost once the size of the list above is known."""
        return _sat(self.cost + _sat(self.per_item * items))


def analyse_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    limits: QueryLimits | None = None,
) -> OperationCost:
    """The counts of the operation that runs, or the worst over all operations when
    the name picks none (then nothing runs: execution refuses it); QueryTooComplexError
    on a cycle of fragment spreads."""
    operation = get_operation_ast(document, operation_name)
    operations = (
        [operation]
        if operation is not None
        else [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    )
    return _Analyser(schema, document, operations, variables or {}, limits or QueryLimits()).run()


def check_operation(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    limits: QueryLimits | None = None,
) -> OperationCost:
    """The counts, or QueryTooComplexError naming the first limit they cross."""
    limits = limits or QueryLimits()
    found = analyse_operation(schema, document, operation_name, variables, limits)
    over = [
        ("depth", found.depth, limits.max_depth, "max_depth", "nest fewer fields"),
        ("alias count", found.aliases, limits.max_aliases, "max_aliases", "use fewer aliases"),
        ("field count", found.fields, limits.max_fields, "max_fields", "select fewer fields"),
        (
            "cost",
            found.cost,
            limits.max_cost,
            "max_cost",
            "ask for smaller pages (first, k, limit) or nest fewer lists",
        ),
    ]
    for what, value, limit, name, advice in over:
        if value > limit:
            shown = f"{value}" if value < _CEILING else f"over {_CEILING}"
            raise QueryTooComplexError(
                f"the operation's {what} is {shown}, over the limit of {limit}: {advice}",
                limit=name,
                value=value,
            )
    return found


class _Analyser:
    """The pass: fragments first, in dependency order, then each operation."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operations: Sequence[OperationDefinitionNode],
        variables: Mapping[str, Any],
        limits: QueryLimits,
    ) -> None:
        self.schema = schema
        self.document = document
        self.operations = operations
        self.variables = variables
        self.limits = limits
        self.defaults: dict[str, ValueNode] = {}
        for op in operations:  # one operation, but for a document whose name picks none
            for v in op.variable_definitions or ():
                if v.default_value is not None:
                    self.defaults.setdefault(v.variable.name.value, v.default_value)
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.summaries: dict[str, _Summary] = {}

    def run(self) -> OperationCost:
        self._summarise_fragments()
        worst = OperationCost(0, 0, 0, 0)
        for op in self.operations:
            root = self.schema.get_root_type(op.operation)
            found = self._selection_set(op.selection_set, root)
            worst = OperationCost(
                depth=max(worst.depth, found.depth),
                aliases=max(worst.aliases, found.aliases),
                fields=max(worst.fields, found.fields),
                cost=max(worst.cost, found.priced(self.limits.default_list_size)),
            )
        return worst

    def _summarise_fragments(self) -> None:
        for d in self.document.definitions:
            if isinstance(d, FragmentDefinitionNode):
                self.fragments.setdefault(d.name.value, d)
        waiting: dict[str, int] = {}
        dependents: dict[str, list[str]] = {name: [] for name in self.fragments}
        for name, fragment in self.fragments.items():
            spread = _spreads_in(fragment.selection_set) & self.fragments.keys()
            waiting[name] = len(spread)
            for dependency in spread:
                dependents[dependency].append(name)
        ready = [name for name, count in waiting.items() if count == 0]
        while ready:
            name = ready.pop()
            fragment = self.fragments[name]
            on = self.schema.get_type(fragment.type_condition.name.value)
            self.summaries[name] = self._selection_set(fragment.selection_set, on)
            for dependent in dependents[name]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)
        # Fragments left waiting are in a cycle of spreads, or spread one that is.

    def _selection_set(
        self, node: SelectionSetNode | None, parent: GraphQLNamedType | None
    ) -> _Summary:
        total = _Summary()
        for selection in node.selections if node else ():
            if isinstance(selection, FieldNode):
                total.add(self._field(selection, parent))
            elif isinstance(selection, InlineFragmentNode):
                on = (
                    self.schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                total.add(self._selection_set(selection.selection_set, on))
            elif isinstance(selection, FragmentSpreadNode):
                total.add(self._spread(selection.name.value))
        return total

    def _spread(self, name: str) -> _Summary:
        found = self.summaries.get(name)
        if found is not None:
            return found
        if name in self.fragments:
            raise QueryTooComplexError(
                f"fragment {name} spreads itself, directly or through other fragments",
                limit="fragment_cycle",
            )
        return _Summary()  # an unknown fragment: validation reports it

    def _field(self, node: FieldNode, parent: GraphQLNamedType | None) -> _Summary:
        name = node.name.value
        definition = self._definition(parent, name)
        named = get_named_type(definition.type) if definition else None
        is_list = definition is not None and is_list_type(get_nullable_type(definition.type))
        introspective = name.startswith("__") or (
            parent is not None and parent.name.startswith("__")
        )
        size = None if definition is None or introspective else self._size(definition, node)
        below = self._selection_set(node.selection_set, named)
        items_below = size if size is not None and not is_list else self.limits.default_list_size
        own = 1 if named is not None and is_composite_type(named) else 0
        unit = _sat(own + below.priced(items_below))
        found = _Summary(
            depth=below.depth + 1,
            aliases=_sat(below.aliases + (1 if node.alias else 0)),
            fields=_sat(below.fields + 1),
        )
        if is_list and not introspective and size is None:
            found.per_item = unit
        elif is_list and size is not None:
            found.cost = _sat(size * unit)
        else:
            found.cost = unit
        return found

    def _definition(self, parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
        if name == "__typename":
            return TypeNameMetaFieldDef
        if parent is not None and parent is self.schema.query_type:
            if name == "__schema":
                return SchemaMetaFieldDef
            if name == "__type":
                return TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            found: GraphQLField | None = parent.fields.get(name)
            return found
        return None

    def _size(self, definition: GraphQLField, node: FieldNode) -> int | None:
        """Items the field's size argument asks for, or None if it takes none."""
        for argument in SIZE_ARGUMENTS:
            if argument not in definition.args:
                continue
            given = next((a.value for a in node.arguments or () if a.name.value == argument), None)
            value = self._int(given) if given is not None else None
            if value is None:  # absent, null or not an Int: the argument's default
                default = definition.args[argument].default_value
                value = default if _is_int(default) else self.limits.default_list_size
            return min(max(value, 0), self.limits.size_cap(argument))
        return None

    def _int(self, value: ValueNode) -> int | None:
        if isinstance(value, IntValueNode):
            digits = value.value.lstrip("-")
            if len(digits) > 12:  # over any cap; int() of a huge literal is slow
                return -1 if value.value.startswith("-") else _CEILING
            return int(value.value)
        if isinstance(value, VariableNode):
            name = value.name.value
            if name in self.variables:
                given = self.variables[name]
                return given if _is_int(given) else None
            default = self.defaults.get(name)
            if default is not None and not isinstance(default, VariableNode):
                return self._int(default)
        return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _spreads_in(node: SelectionSetNode) -> set[str]:
    """Names of the fragments spread anywhere inside, without recursion."""
    names: set[str] = set()
    stack = [node]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.add(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)
    return names
