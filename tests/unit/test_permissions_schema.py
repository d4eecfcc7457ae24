"""The whole schema is walked: every root field (query, mutation, subscription) carries a
role check, mutations need a writer, API keys an admin, and the types holding key data
can only be reached through admin fields. No field is exempt: API.md has no health or
version field (``/healthz`` serves that outside GraphQL), and ``__typename`` or
introspection are not fields of the roots. The walker is tested on bad schemas too, so a
broken walker cannot pass silently."""

from __future__ import annotations

from collections import deque

import pytest
import strawberry
from graphql import (
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLUnionType,
    get_named_type,
)
from strawberry.permission import PermissionExtension

from app.domain.auth import Role
from graphql_schema.permissions import IsAdmin, IsReader, RolePermission
from graphql_schema.schema import schema

ROOTS = ("Query", "Mutation", "Subscription")
#: Types that hold what only admins may see.
SENSITIVE_TYPES = frozenset({"ApiKey", "CreatedApiKey"})
ADMIN_FIELDS = frozenset(
    {("Query", "apiKeys"), ("Mutation", "createApiKey"), ("Mutation", "revokeApiKey")}
)
#: The least role each root needs by default.
ROOT_ROLE = {"Query": Role.READER, "Mutation": Role.WRITER, "Subscription": Role.READER}
NOBODY = 0  # rank of "no role needed"


def field_roles(field: GraphQLField) -> list[Role]:
    """The roles the field's permission classes require (none: unchecked)."""
    definition = (field.extensions or {}).get("strawberry-definition")
    if definition is None:
        return []
    return [
        permission.role
        for extension in definition.extensions
        if isinstance(extension, PermissionExtension)
        for permission in extension.permissions
        if isinstance(permission, RolePermission)
    ]


def root_fields(s: strawberry.Schema) -> list[tuple[str, str, GraphQLField]]:
    found: list[tuple[str, str, GraphQLField]] = []
    for root in ROOTS:
        gql_type = s._schema.get_type(root)
        if isinstance(gql_type, GraphQLObjectType):
            found.extend((root, name, field) for name, field in gql_type.fields.items())
    return found


def unchecked_roots(s: strawberry.Schema) -> list[str]:
    return [f"{root}.{name}" for root, name, field in root_fields(s) if not field_roles(field)]


def least_role_to_reach(s: strawberry.Schema) -> dict[str, int]:
    """For each named type, the least role rank a caller needs to get at it from a root
    (interfaces and unions reach all their implementations)."""
    best: dict[str, int] = {}
    queue: deque[tuple[GraphQLNamedType, int]] = deque()
    for _, _, field in root_fields(s):
        rank = max((r.rank for r in field_roles(field)), default=NOBODY)
        queue.append((get_named_type(field.type), rank))
    while queue:
        named, rank = queue.popleft()
        if named.name in best and best[named.name] <= rank:
            continue
        best[named.name] = rank
        if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
            for possible in s._schema.get_possible_types(named):
                queue.append((possible, rank))
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field in named.fields.values():
                need = max([rank, *(r.rank for r in field_roles(field))])
                queue.append((get_named_type(field.type), need))
    return best


def exposed_sensitive_types(s: strawberry.Schema) -> list[str]:
    reach = least_role_to_reach(s)
    return sorted(t for t in SENSITIVE_TYPES if t in reach and reach[t] < Role.ADMIN.rank)


# --- the real schema ------------------------------------------------------------------


def test_every_root_field_has_a_role_check() -> None:
    assert root_fields(schema), "the walk found no root fields at all"
    assert unchecked_roots(schema) == []


@pytest.mark.parametrize("root", ROOTS)
def test_each_root_needs_at_least_its_role(root: str) -> None:
    fields = [(name, field) for r, name, field in root_fields(schema) if r == root]
    assert fields
    for name, field in fields:
        needed = max(r.rank for r in field_roles(field))
        assert needed >= ROOT_ROLE[root].rank, f"{root}.{name} needs only rank {needed}"


def test_api_key_fields_are_admin_only() -> None:
    by_name = {(root, name): field for root, name, field in root_fields(schema)}
    assert by_name.keys() >= ADMIN_FIELDS
    for key in ADMIN_FIELDS:
        assert field_roles(by_name[key]) == [Role.ADMIN], key
    others = {k: f for k, f in by_name.items() if k not in ADMIN_FIELDS}
    assert all(Role.ADMIN not in field_roles(f) for f in others.values()), (
        "an admin-only field outside the known list: add it to ADMIN_FIELDS if meant"
    )


def test_key_data_is_reachable_only_by_admins() -> None:
    reach = least_role_to_reach(schema)
    assert reach.keys() >= SENSITIVE_TYPES, "the walk no longer reaches the key types"
    assert exposed_sensitive_types(schema) == []
    # the graph itself is for readers: the walk sees the usual types at reader rank
    assert reach["Document"] == reach["Entity"] == Role.READER.rank


def test_no_node_type_holds_key_data() -> None:
    node = schema._schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    implementations = {t.name for t in schema._schema.get_possible_types(node)}
    assert "Document" in implementations
    assert not implementations & SENSITIVE_TYPES


# --- the walker itself catches what it is for ---------------------------------------


@strawberry.type
class Secret:
    value: str


@strawberry.type
class Holder:
    secret: Secret


def test_walker_reports_an_unchecked_root_field() -> None:
    @strawberry.type
    class Query:
        @strawberry.field(permission_classes=[IsReader])  # type: ignore[untyped-decorator]  # mypy 2.x types field(...) as Any
        def fine(self) -> int:
            return 1

        @strawberry.field
        def forgotten(self) -> int:
            return 2

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def wipe(self) -> bool:
            return True

    bad = strawberry.Schema(query=Query, mutation=Mutation)
    assert unchecked_roots(bad) == ["Query.forgotten", "Mutation.wipe"]


def test_walker_reports_key_data_reachable_by_readers() -> None:
    @strawberry.type
    class Query:
        @strawberry.field(permission_classes=[IsReader])  # type: ignore[untyped-decorator]  # mypy 2.x types field(...) as Any
        def holder(self) -> Holder:
            return Holder(secret=Secret(value="x"))

        @strawberry.field(permission_classes=[IsAdmin])  # type: ignore[untyped-decorator]
        def direct(self) -> Secret:
            return Secret(value="x")

    leaky = strawberry.Schema(query=Query)
    reach = least_role_to_reach(leaky)
    assert reach["Secret"] == Role.READER.rank  # through holder, a reader field
    assert reach["Holder"] == Role.READER.rank


def test_walker_sees_admin_only_paths() -> None:
    @strawberry.type
    class Query:
        @strawberry.field(permission_classes=[IsAdmin])  # type: ignore[untyped-decorator]
        def holder(self) -> Holder:
            return Holder(secret=Secret(value="x"))

    tight = strawberry.Schema(query=Query)
    assert least_role_to_reach(tight)["Secret"] == Role.ADMIN.rank
