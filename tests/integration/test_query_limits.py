"""Query limits over HTTP, through the real Starlette app as create_app builds it: each refusal arrives with its code, before anything resolves; batches and
mutations over GET are refused by Strawberry's view."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from app import server
from app.config import load_settings
from app.container import build_container


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("limits"))
    container = build_container(settings)
    app = server.create_app(settings, container)  # its schema carries the limits
    await container.graph.start()  # only the graph store: no models load
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            yield c
    finally:
        await container.graph.close()


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    operation: str | None = None,
) -> tuple[int, dict[str, Any]]:
    payload: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation:
        payload["operationName"] = operation
    response = await client.post("/graphql", json=payload)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def codes(body: dict[str, Any]) -> list[str]:
    return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]


DEAR = """query Dear($n: Int) { documents(first: $n) { edges { node {
  entities(first: $n) { edges { node { name
    relations(first: $n) { edges { node { type } } } } } } } } } }"""


async def test_queries_within_limits_run(client: httpx.AsyncClient) -> None:
    status, body = await post(client, "{ stats { documents } }")
    assert (status, body) == (200, {"data": {"stats": {"documents": 0}}})
    status, body = await post(client, DEAR, {"n": 5})
    assert status == 200 and "errors" not in body, body
    assert body["data"]["documents"]["edges"] == []


async def test_graphiql_introspection_runs(client: httpx.AsyncClient) -> None:
    query = get_introspection_query(
        descriptions=True, schema_description=True, input_value_deprecation=True
    )
    status, body = await post(client, query)
    assert status == 200 and "errors" not in body, body.get("errors")
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.mark.parametrize(
    ("query", "variables", "says"),
    [
        (DEAR, {"n": 50}, "cost is"),
        ("{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }", None, "alias count"),
        (
            "{ relations(first: 1) { edges { node { source { "
            + "relations(first: 1) { edges { node { source { " * 3
            + "name"
            + " } } } }" * 4
            + " }",
            None,
            "depth limit of 15",
        ),
        (
            "query { entities(first: 1) { edges { node { ...F30 } } } }\n"
            + "fragment F0 on Entity { a: name }\n"
            + "\n".join(
                f"fragment F{i} on Entity {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 31)
            ),
            None,
            "alias count is 1073741824",
        ),
    ],
)
async def test_too_complex_is_refused_with_its_code(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None, says: str
) -> None:
    status, body = await post(client, query, variables)
    assert status == 200
    assert codes(body) == ["QUERY_TOO_COMPLEX"], body
    assert says in body["errors"][0]["message"]
    assert body["data"] is None


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ('{ search(query: "' + "x" * 70_000 + '") { score } }', "over the limit of 65536"),
        ("{ " + "__typename " * 5_001 + "}", "more than 5000 tokens"),
    ],
)
async def test_oversized_documents_are_bad_input(
    client: httpx.AsyncClient, query: str, says: str
) -> None:
    status, body = await post(client, query)
    assert status == 200
    assert codes(body) == ["BAD_USER_INPUT"], body
    assert says in body["errors"][0]["message"]


async def test_a_page_over_its_cap_is_left_to_the_resolver(client: httpx.AsyncClient) -> None:
    # The analysis counts first: 1000 at the cap (100); the resolver names the limit.
    _, body = await post(client, "{ entities(first: 1000) { totalCount } }")
    assert codes(body) == ["BAD_USER_INPUT"]
    assert "page size" in body["errors"][0]["message"]


async def test_operation_name_selects_the_analysed_operation(client: httpx.AsyncClient) -> None:
    document = "query Cheap { stats { entities } }\n" + DEAR
    _, body = await post(client, document, {"n": 50}, operation="Cheap")
    assert body == {"data": {"stats": {"entities": 0}}}
    _, body = await post(client, document, {"n": 50}, operation="Dear")
    assert codes(body) == ["QUERY_TOO_COMPLEX"]


async def test_batched_requests_are_refused(client: httpx.AsyncClient) -> None:
    batch = [{"query": "{ __typename }"}, {"query": "{ stats { documents } }"}]
    response = await client.post("/graphql", json=batch)
    assert response.status_code == 400
    assert "Batching is not enabled" in response.text


async def test_mutations_over_get_are_refused(client: httpx.AsyncClient) -> None:
    mutation = 'mutation { deleteDocument(id: "doc_x") { deleted } }'
    response = await client.get("/graphql", params={"query": mutation})
    assert response.status_code == 400
    assert "mutations are not allowed when using GET" in response.text
    # Queries over GET still run, with the limits applied.
    response = await client.get("/graphql", params={"query": "{ stats { chunks } }"})
    assert response.json() == {"data": {"stats": {"chunks": 0}}}
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"
    response = await client.get("/graphql", params={"query": aliases})
    assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]


async def test_variables_over_get_are_used_by_the_cost(client: httpx.AsyncClient) -> None:
    params = {"query": DEAR, "variables": json.dumps({"n": 50})}
    response = await client.get("/graphql", params=params)
    assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]
