"""A subscription sent as one HTTP request (what GraphiQL does when it runs a document
it has not parsed yet) is refused with a coded error saying to use the WebSocket, not
run like a query until graphql-core fails ("Cannot return null for non-nullable field
Subscription.askStream", masked as INTERNAL_SERVER_ERROR). The real app over ASGI; the
refusal comes before any backend is used, so the container is built but not started."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import load_settings
from app.container import build_container
from app.observability.metrics import REGISTRY
from app.server import create_app
from graphql_schema.schema import schema

ASK_STREAM = """subscription {
  askStream(question: "Who founded the Hollowmere glassworks?", k: 3) {
    delta done answer { answer }
  }
}"""
NAMED_EVENTS = "subscription Watch { ingestionEvents { jobId } }"
GRAPHIQL_ACCEPT = "application/json, multipart/mixed"  # GraphiQL 3's HTTP fetcher


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(data_dir=tmp_path)
    app = create_app(settings, build_container(settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        yield http


def refused(body: dict[str, Any]) -> bool:
    errors = body.get("errors") or []
    return (
        body.get("data") is None
        and [(e.get("extensions") or {}).get("code") for e in errors] == ["BAD_USER_INPUT"]
        and "WebSocket" in errors[0]["message"]
    )


def failed_operations() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.labels.get("outcome") == "failed" and sample.name.endswith("_total"):
                total += sample.value
    return total


@pytest.mark.parametrize("document", [ASK_STREAM, NAMED_EVENTS])
async def test_a_subscription_posted_like_graphiql_is_a_coded_error(
    client: httpx.AsyncClient, document: str
) -> None:
    failed_before = failed_operations()
    response = await client.post(
        "/graphql",
        content=json.dumps({"query": document}),
        headers={"content-type": "application/json", "accept": GRAPHIQL_ACCEPT},
    )
    assert response.status_code == 200
    assert refused(response.json()), response.json()
    assert failed_operations() == failed_before  # nothing counted as a server bug


async def test_a_subscription_in_a_get_url_is_a_coded_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": ASK_STREAM})
    assert response.status_code == 200
    assert refused(response.json()), response.json()


async def test_queries_and_bad_documents_are_unchanged(client: httpx.AsyncClient) -> None:
    ok = await client.post("/graphql", json={"query": "{ __typename }"})
    assert ok.json() == {"data": {"__typename": "Query"}}
    unknown = (await client.post("/graphql", json={"query": "{ nope }"})).json()
    assert [e["extensions"]["code"] for e in unknown["errors"]] == ["GRAPHQL_VALIDATION_FAILED"]
    broken = (await client.post("/graphql", json={"query": "subscription {"})).json()
    assert [e["extensions"]["code"] for e in broken["errors"]] == ["GRAPHQL_PARSE_FAILED"]
    mutation_by_get = await client.get("/graphql", params={"query": "mutation { __typename }"})
    assert (mutation_by_get.status_code, mutation_by_get.text) == (
        400,
        "mutations are not allowed when using GET",
    )


async def test_executing_a_subscription_in_process_is_refused_too() -> None:
    result = await schema.execute(ASK_STREAM)
    assert result.data is None and result.errors is not None
    assert [e.extensions for e in result.errors] == [{"code": "BAD_USER_INPUT"}]
