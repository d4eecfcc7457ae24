"""Query limits on the real schema: depth, aliases, fields and cost counted as the
expanded document would count them, in time linear in the document; size and tokens
refused before parsing; each refusal with its code."""

from __future__ import annotations

import time
from typing import Any

import pytest
from graphql import GraphQLSchema, get_introspection_query, parse

from app.domain.errors import BadInputError, ConfigurationError, QueryTooComplexError
from graphql_schema.limits import (
    OperationCost,
    QueryLimits,
    analyse_operation,
    check_document_text,
    check_operation,
    query_limits,
)
from graphql_schema.schema import KGSchema, build_schema
from graphql_schema.schema import schema as plain_schema

SCHEMA: GraphQLSchema = plain_schema._schema


@pytest.fixture(scope="module")
def limited() -> KGSchema:
    return build_schema(extensions=[query_limits()])


def cost_of(
    query: str, variables: dict[str, Any] | None = None, operation: str | None = None
) -> OperationCost:
    return analyse_operation(SCHEMA, parse(query), operation, variables)


async def codes(schema: KGSchema, query: str, **kwargs: Any) -> list[str]:
    result = await schema.execute(query, **kwargs)
    return [str((e.extensions or {}).get("code")) for e in result.errors or []]


def doubling(levels: int, leaf: str = "a: name") -> str:
    """30 levels: about 1.3 KB, 2^30 fields once expanded."""
    fragments = [f"fragment F0 on Entity {{ {leaf} }}"] + [
        f"fragment F{i} on Entity {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)
    ]
    return (
        f"query Q {{ entities(first: 1) {{ edges {{ node {{ ...F{levels} }} }} }} }}\n"
        + "\n".join(fragments)
    )


# --- depth --------------------------------------------------------------------------

DEPTH_9 = """{ relations(first: 1) { edges { node { source {
  relations(first: 1) { edges { node { target { name } } } } } } } } }"""


def test_depth_counts_nested_fields() -> None:
    assert cost_of(DEPTH_9).depth == 9
    assert check_operation(SCHEMA, parse(DEPTH_9), limits=QueryLimits(max_depth=9)).depth == 9
    with pytest.raises(QueryTooComplexError, match="depth is 9, over the limit of 8") as info:
        check_operation(SCHEMA, parse(DEPTH_9), limits=QueryLimits(max_depth=8))
    assert info.value.details["limit"] == "max_depth"


def test_depth_through_fragments_and_inline_fragments() -> None:
    query = """{ relations(first: 1) { ...R } }
    fragment R on RelationConnection { edges { node { ... on Relation { source { ...E } } } } }
    fragment E on Entity { relations(first: 1) { edges { node { target { name } } } } }"""
    assert cost_of(query).depth == 9


async def test_too_deep_is_refused_before_parsing(limited: KGSchema) -> None:
    deep = "{ " + "relations(first: 1) { edges { node { source { " * 4 + "name" + " } } } }" * 4
    deep += " }"
    with pytest.raises(QueryTooComplexError, match="depth limit of 15"):
        check_document_text(deep, QueryLimits())
    assert await codes(limited, deep) == ["QUERY_TOO_COMPLEX"]
    # Braces inside argument values are input objects, not selections.
    filtered = '{ documents(filter: {titleContains: "x"}) { totalCount } }'
    check_document_text(filtered, QueryLimits(max_depth=2))


# --- aliases and fields --------------------------------------------------------------


def aliased(n: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"


async def test_aliases_limit(limited: KGSchema) -> None:
    assert cost_of(aliased(30)).aliases == 30
    assert await codes(limited, aliased(30)) == []
    assert await codes(limited, aliased(31)) == ["QUERY_TOO_COMPLEX"]
    result = await limited.execute(aliased(31))
    assert result.errors and "alias count is 31, over the limit of 30" in result.errors[0].message


def test_field_count_expands_fragments() -> None:
    query = "{ stats { ...S ...S } } fragment S on GraphStats { documents chunks }"
    assert cost_of(query).fields == 5
    with pytest.raises(QueryTooComplexError, match="field count is 5"):
        check_operation(SCHEMA, parse(query), limits=QueryLimits(max_fields=4))


# --- cost ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        # 1 connection + 50 x (edge + node + connection + 10 x (edge + node))
        (
            "{ documents(first: 50) { edges { node { entities(first: 10) { edges { node { name } } } } } } }",
            1 + 50 * (3 + 10 * 2),
        ),
        ("{ documents { edges { node { id } } } }", 1 + 20 * 2),  # default first: 20
        ("{ documents(first: null) { edges { node { id } } } }", 1 + 20 * 2),
        ("{ documents(first: 1000) { edges { node { id } } } }", 1 + 100 * 2),  # capped
        ("{ documents(first: -5) { edges { node { id } } } }", 1),
        ('{ search(query: "x", k: 7) { score chunk { document { title } } } }', 7 * 3),
        ('{ search(query: "x") { score } }', 10),  # default k: 10
        ('{ ask(question: "x", k: 4) { answer citations { chunk { id } } } }', 1 + 4 * 2),
        (
            '{ neighborhood(entityId: "ent_x", limit: 7) { nodes { name } edges { type } } }',
            1 + 7 + 7,
        ),
        # a list without a size argument counts default_list_size (10) items
        ("{ relations(first: 1) { edges { node { evidence { text } } } } }", 1 + 1 * (2 + 10)),
        ("{ stats { documents } totalCountOnly: documents { totalCount } }", 2),
    ],
)
def test_cost_weights_lists_by_their_size(query: str, cost: int) -> None:
    assert cost_of(query).cost == cost


def test_cost_over_budget_is_refused() -> None:
    query = """{ documents(first: 100) { edges { node {
      entities(first: 100) { edges { node { name } } } } } } }"""
    with pytest.raises(QueryTooComplexError, match="cost is 20301, over the limit of 10000"):
        check_operation(SCHEMA, parse(query))
    assert check_operation(SCHEMA, parse(query), limits=QueryLimits(max_cost=20301)).cost == 20301


@pytest.mark.parametrize(
    ("variables", "header", "cost"),
    [
        ({"n": 5}, "$n: Int", 1 + 5 * 2),
        ({}, "$n: Int", 1 + 20 * 2),  # absent: the argument's default
        ({"n": None}, "$n: Int", 1 + 20 * 2),  # null: the resolver's default
        ({}, "$n: Int = 3", 1 + 3 * 2),  # the variable's default
        ({"n": 4}, "$n: Int = 3", 1 + 4 * 2),
        ({"n": 10**9}, "$n: Int", 1 + 100 * 2),  # capped as the resolver caps it
        ({"n": "ten"}, "$n: Int", 1 + 20 * 2),  # refused later by coercion
        ({"n": True}, "$n: Int", 1 + 20 * 2),
    ],
)
def test_variables_set_the_page_size(variables: dict[str, Any], header: str, cost: int) -> None:
    query = f"query({header}) {{ documents(first: $n) {{ edges {{ node {{ id }} }} }} }}"
    assert cost_of(query, variables).cost == cost


async def test_cost_refusal_uses_the_request_variables(limited: KGSchema) -> None:
    query = """query($n: Int) { documents(first: $n) { edges { node {
      entities(first: $n) { edges { node { name } } } } } } }"""
    assert await codes(limited, query, variable_values={"n": 100}) == ["QUERY_TOO_COMPLEX"]
    result = await limited.execute(query, variable_values={"n": 100})
    assert result.data is None


# --- fragments -----------------------------------------------------------------------

REUSED = """query { a: documents(first: 2) { ...Docs } b: documents(first: 3) { ...Docs } }
fragment Docs on DocumentConnection { edges { node { t: title ...Ent } } }
fragment Ent on Document { entities(first: 4) { edges { node { n: name } } } }"""

INLINED = """query {
  a: documents(first: 2) { edges { node { t: title entities(first: 4) { edges { node { n: name } } } } } }
  b: documents(first: 3) { edges { node { t: title entities(first: 4) { edges { node { n: name } } } } } }
}"""


def test_fragments_count_at_each_place_they_are_spread() -> None:
    found = cost_of(REUSED)
    assert found == cost_of(INLINED)
    assert found == OperationCost(depth=7, aliases=6, fields=16, cost=(1 + 2 * 11) + (1 + 3 * 11))


def test_a_fragment_under_a_connection_takes_its_page_size() -> None:
    query = """{ entities(first: 3) { ...Edges } }
    fragment Edges on EntityConnection { edges { node { name } } }"""
    assert cost_of(query).cost == 1 + 3 * 2


def test_fragment_reused_many_times() -> None:
    spreads = " ".join(f"d{i}: stats {{ ...S }}" for i in range(25))
    query = f"{{ {spreads} }} fragment S on GraphStats {{ x: documents chunks }}"
    assert cost_of(query) == OperationCost(depth=2, aliases=50, fields=75, cost=25)


async def test_doubling_fragments_are_refused_fast(limited: KGSchema) -> None:
    document = doubling(30)
    assert len(document) < 1500
    started = time.perf_counter()
    result = await limited.execute(document)
    elapsed = time.perf_counter() - started
    assert result.errors and result.errors[0].extensions == {"code": "QUERY_TOO_COMPLEX"}
    assert "alias count is 1073741824" in result.errors[0].message
    assert elapsed < 1.0, elapsed  # the one timed assertion: naive counting takes hours


def test_doubling_without_aliases_is_refused_by_field_count() -> None:
    found = cost_of(doubling(30, leaf="name"))
    assert (found.depth, found.aliases, found.fields) == (4, 0, 2**30 + 3)
    with pytest.raises(QueryTooComplexError, match="field count"):
        check_operation(SCHEMA, parse(doubling(30, leaf="name")))


def test_a_long_chain_of_fragments_needs_no_recursion() -> None:
    fragments = ["fragment F0 on Entity { name }"] + [
        f"fragment F{i} on Entity {{ ...F{i - 1} }}" for i in range(1, 2_000)
    ]
    query = "{ entities(first: 1) { edges { node { ...F1999 } } } }\n" + "\n".join(fragments)
    assert cost_of(query) == OperationCost(depth=4, aliases=0, fields=4, cost=1 + 2)


def test_counts_saturate_instead_of_growing_without_end() -> None:
    found = cost_of(doubling(200))
    assert found.aliases == 2**53
    with pytest.raises(QueryTooComplexError, match="over 9007199254740992"):
        check_operation(SCHEMA, parse(doubling(200)))


@pytest.mark.parametrize(
    "fragments",
    [
        "fragment A on Entity { name ...A }",
        "fragment A on Entity { ...B } fragment B on Entity { name ...A }",
        # C is not in the cycle, but spreads a fragment that is
        "fragment C on Entity { ...A } fragment A on Entity { ...B } fragment B on Entity { ...A }",
    ],
)
async def test_fragment_cycles_are_refused(fragments: str, limited: KGSchema) -> None:
    first = fragments.split()[1]
    query = f"{{ entities(first: 1) {{ edges {{ node {{ ...{first} }} }} }} }} {fragments}"
    with pytest.raises(QueryTooComplexError, match="spreads itself"):
        analyse_operation(SCHEMA, parse(query))
    # Validation (NoFragmentCycles) sees it first when the whole pipeline runs.
    assert await codes(limited, query) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_unknown_fragments_are_left_to_validation(limited: KGSchema) -> None:
    query = "{ entities(first: 2) { edges { node { name ...Nope } } } }"
    assert cost_of(query) == OperationCost(depth=4, aliases=0, fields=4, cost=1 + 2 * 2)
    result = await limited.execute(query)
    assert result.errors and "Unknown fragment 'Nope'" in result.errors[0].message
    assert result.errors[0].extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}


def test_unknown_fields_and_types_are_counted_safely() -> None:
    query = "{ nope { deeper { x: y } } ... on Nowhere { a } }"
    assert cost_of(query) == OperationCost(depth=3, aliases=1, fields=4, cost=0)


# --- the document text -----------------------------------------------------------------


async def test_too_many_tokens_is_bad_input(limited: KGSchema) -> None:
    many = "{ " + "__typename " * 5_000 + "}"  # 5002 tokens
    with pytest.raises(BadInputError, match="more than 5000 tokens"):
        check_document_text(many, QueryLimits())
    assert await codes(limited, many) == ["BAD_USER_INPUT"]
    check_document_text("{ " + "__typename " * 4_998 + "}", QueryLimits())


def test_comments_count_as_tokens() -> None:
    commented = "#\n" * 10 + "{ __typename }"
    check_document_text(commented, QueryLimits(max_tokens=13))
    with pytest.raises(BadInputError, match="tokens"):
        check_document_text(commented, QueryLimits(max_tokens=12))


async def test_oversized_document_is_bad_input(limited: KGSchema) -> None:
    big = '{ search(query: "' + "x" * 70_000 + '") { score } }'
    with pytest.raises(BadInputError, match="over the limit of 65536") as info:
        check_document_text(big, QueryLimits())
    assert info.value.details["limit"] == "max_document_bytes"
    assert await codes(limited, big) == ["BAD_USER_INPUT"]
    exact = "{ __typename }" + " " * (65_536 - 14)
    check_document_text(exact, QueryLimits())
    # Bytes, not characters: 3 bytes each in UTF-8.
    with pytest.raises(BadInputError):
        check_document_text("#" + "€" * 22_000 + "\n{ __typename }", QueryLimits())


async def test_syntax_errors_are_left_to_the_parser(limited: KGSchema) -> None:
    check_document_text('{ documents { "unterminated', QueryLimits())
    assert await codes(limited, '{ documents { "unterminated') == ["GRAPHQL_PARSE_FAILED"]


# --- what must keep working ------------------------------------------------------------


async def test_graphiql_introspection_passes_the_defaults(limited: KGSchema) -> None:
    # The query GraphiQL sends (graphql-js getIntrospectionQuery, 9 levels of ofType),
    # with every option on.
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        one_of=True,
    )
    found = cost_of(query)
    assert found.depth == 15 and found.aliases == 0
    result = await limited.execute(query)
    assert result.errors is None
    assert result.data and len(result.data["__schema"]["types"]) > 20


async def test_operation_name_picks_what_is_analysed(limited: KGSchema) -> None:
    query = """query Cheap { __typename }
    query Dear { documents(first: 100) { edges { node {
      entities(first: 100) { edges { node { name } } } } } } }"""
    assert cost_of(query, operation="Cheap").cost == 0
    assert cost_of(query, operation="Dear").cost == 20301
    assert cost_of(query).cost == 20301  # no name, two operations: the worst
    result = await limited.execute(query, operation_name="Cheap")
    assert result.errors is None and result.data == {"__typename": "Query"}
    assert await codes(limited, query, operation_name="Dear") == ["QUERY_TOO_COMPLEX"]


async def test_subscriptions_are_limited(limited: KGSchema) -> None:
    ok = 'subscription { askStream(question: "x", k: 3) { delta answer { citations { quote } } } }'
    assert cost_of(ok) == OperationCost(depth=4, aliases=0, fields=5, cost=1 + 1 + 10)
    stages = " ".join(f"s{i}: stage" for i in range(31))
    stream = await limited.subscribe(f"subscription {{ ingestionEvents {{ {stages} }} }}")
    first = await anext(stream)
    await stream.aclose()
    assert first.errors and first.errors[0].extensions == {"code": "QUERY_TOO_COMPLEX"}


def test_mutations_are_limited() -> None:
    query = 'mutation { deleteDocument(id: "doc_x") { a: id b: deleted } }'
    assert cost_of(query) == OperationCost(depth=2, aliases=2, fields=3, cost=1)


async def test_invalid_documents_keep_their_validation_errors(limited: KGSchema) -> None:
    query = "{ nope " + " ".join(f"a{i}: __typename" for i in range(40)) + " }"
    assert await codes(limited, query) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize("field", ["max_depth", "max_cost", "max_tokens"])
@pytest.mark.parametrize("value", [0, -1, True])
def test_limits_must_be_positive_whole_numbers(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=field):
        QueryLimits(**{field: value})  # type: ignore[arg-type]


def test_a_passed_text_is_remembered_and_a_refused_one_refused_every_time() -> None:
    """The lexing pass is skipped for a text that passed under the same limits; a
    refusal is never remembered, and other limits check the text anew."""
    from graphql_schema.limits import document

    text = "{ a { b { c } } }"
    document._passes.cache_clear()
    check_document_text(text, QueryLimits())
    check_document_text(text, QueryLimits())
    assert document._passes.cache_info().hits == 1
    for _ in range(2):  # same text, tighter limits: refused, and again
        with pytest.raises(QueryTooComplexError, match="depth limit of 2"):
            check_document_text(text, QueryLimits(max_depth=2))
    assert document._passes.cache_info().currsize == 1
    big = "{ " + "a " * 2 * document.PASSED_TEXT_CHARS + "}"  # over the remembered size
    with pytest.raises(BadInputError, match="tokens"):
        check_document_text(big, QueryLimits())
    assert document._passes.cache_info().currsize == 1
