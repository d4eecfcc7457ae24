"""Asking over real HTTP and WebSocket: a document goes in, a question comes back with
a cited answer, whole (``ask``) and streamed (``askStream``, both protocols)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.e2e.test_ingestion_journey import INGEST, wait_job
from tests.support.graphql_client import data_of, error_codes, gql, subscription
from tests.support.live_server import LiveServer

ASK = """query($q: String!) { ask(question: $q, k: 3) {
  answer supported model citations { quote chunk { text } document { title } } } }"""
ASK_STREAM = """subscription($q: String!, $mode: AskMode) {
  askStream(question: $q, k: 3, mode: $mode) {
    delta done answer { answer supported citations { quote chunk { text } document { title } } }
  } }"""


async def ingest(http: httpx.AsyncClient, server: LiveServer, title: str, text: str) -> None:
    job = data_of(
        await gql(http, server.graphql, INGEST, {"input": {"title": title, "text": text}})
    )["ingestDocument"]
    assert (await wait_job(http, server, job["id"]))["status"] == "COMPLETED"


@pytest.fixture(scope="module")
async def inventor(server: LiveServer) -> str:
    """A made-up inventor, so no other test's documents answer for him (a fixed name:
    one with random letters is not always read as a name by the small spaCy model)."""
    name = "Quintus Harwell"
    async with httpx.AsyncClient(timeout=60) as http:
        await ingest(
            http,
            server,
            f"The {name} engine",
            f"The rotary steam engine was invented by {name} in Glasgow. "
            f"{name} was born in 1791 and studied at the University of Edinburgh.",
        )
    return name


async def test_ask_answers_with_a_citation_over_http(
    server: LiveServer, http: httpx.AsyncClient, inventor: str
) -> None:
    answer = data_of(
        await gql(http, server.graphql, ASK, {"q": "Who invented the rotary steam engine?"})
    )["ask"]
    assert answer["supported"] is True and answer["model"] == "extractive"
    assert answer["answer"] == inventor
    cited = answer["citations"][0]
    assert cited["document"]["title"] == f"The {inventor} engine"
    assert cited["quote"] in cited["chunk"]["text"]
    assert inventor in cited["quote"]


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
@pytest.mark.parametrize("mode", ["NAIVE", "LOCAL", "HYBRID"])
async def test_ask_stream_streams_a_cited_answer(
    server: LiveServer, inventor: str, protocol: str, mode: str
) -> None:
    variables = {"q": f"When was {inventor} born?", "mode": mode}
    received: list[dict[str, Any]] = []
    async with subscription(server.ws, ASK_STREAM, variables, protocol=protocol) as stream:
        async with asyncio.timeout(60):
            async for payload in stream:  # ends when the server completes it
                assert "errors" not in payload, payload
                received.append(payload["data"]["askStream"])
    *deltas, last = received
    assert deltas and not any(d["done"] for d in deltas)
    assert last["done"] is True
    answer = last["answer"]
    assert "".join(d["delta"] for d in deltas) == answer["answer"] == "1791"
    assert answer["citations"][0]["quote"] in answer["citations"][0]["chunk"]["text"]


async def test_a_bad_question_is_a_coded_error_on_both_transports(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    body = await gql(http, server.graphql, ASK, {"q": "  "})
    assert body["_status"] == 200 and error_codes(body) == ["BAD_USER_INPUT"]
    async with subscription(server.ws, ASK_STREAM, {"q": ""}) as stream:
        payloads = [p async for p in stream]
    assert len(payloads) == 1
    errors = payloads[0].get("errors") or []
    assert [(e.get("extensions") or {}).get("code") for e in errors] == ["BAD_USER_INPUT"]
