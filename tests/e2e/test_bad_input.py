"""Every bad input we can think of gets a coded error, writes nothing, and the server
keeps serving."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import pytest

from app.domain.ids import document_id
from app.pipeline.normalise import normalise, normalise_title
from tests.support.graphql_client import data_of, error_codes, gql
from tests.support.live_server import LiveServer

INGEST = "mutation($input: DocumentInput!) { ingestDocument(input: $input) { id } }"
INGEST_MANY = "mutation($inputs: [DocumentInput!]!) { ingestDocuments(inputs: $inputs) { id } }"


def doc(**fields: Any) -> dict[str, Any]:
    return {"title": "A title", "text": f"Some text {uuid.uuid4().hex}.", **fields}


BAD_DOCUMENTS = {
    "empty text": (doc(text=""), "text is empty"),
    "whitespace text": (doc(text=" \n\t  "), "text is empty"),
    "control characters only": (doc(text="\x00\x01\x02\x7f"), "text is empty"),
    "text over the limit": (doc(text="a" * 1_000_001), "over the limit of 1000000 bytes"),
    "title over the limit": (doc(title="t" * 501), "over the limit of 500"),
    "empty title": (doc(title="   "), "title is empty"),
    "metadata not an object": (doc(metadata=[1, 2]), "metadata must be a JSON object"),
    "metadata too large": (doc(metadata={"x": "y" * 20_000}), "metadata is over the limit"),
    "lone surrogate": (doc(text="bad \ud800 text"), "not valid Unicode"),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
async def test_bad_document_is_refused(
    server: LiveServer, http: httpx.AsyncClient, case: str
) -> None:
    payload, expected = BAD_DOCUMENTS[case]
    body = await gql(http, server.graphql, INGEST, {"input": payload})
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert expected in body["errors"][0]["message"]
    assert body["data"] is None
    assert "Traceback" not in str(body)


async def test_batch_over_the_limit(server: LiveServer, http: httpx.AsyncClient) -> None:
    body = await gql(http, server.graphql, INGEST_MANY, {"inputs": [doc() for _ in range(101)]})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "100" in body["errors"][0]["message"]


async def test_empty_batch(server: LiveServer, http: httpx.AsyncClient) -> None:
    body = await gql(http, server.graphql, INGEST_MANY, {"inputs": []})
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_one_bad_document_queues_none_of_the_batch(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    good = doc()
    body = await gql(http, server.graphql, INGEST_MANY, {"inputs": [good, doc(text="")]})
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "inputs[1].text" in body["errors"][0]["message"]
    good_id = document_id(normalise_title(good["title"]), normalise(good["text"]))
    # Nothing was queued: the good document never appears.
    import asyncio

    await asyncio.sleep(1.0)
    found = data_of(
        await gql(
            http, server.graphql, "query($id: ID!) { document(id: $id) { id } }", {"id": good_id}
        )
    )
    assert found["document"] is None


@pytest.mark.parametrize(
    ("query", "variables", "code", "says"),
    [
        (
            "mutation($id: ID!) { deleteDocument(id: $id) { id } }",
            {"id": "doc_000000000000"},
            "NOT_FOUND",
            "no document",
        ),
        (
            "mutation($id: ID!) { deleteDocument(id: $id) { id } }",
            {"id": "not-an-id"},
            "BAD_USER_INPUT",
            "not a document id",
        ),
        ('{ documents(after: "garbage!") { totalCount } }', None, "BAD_USER_INPUT", "cursor"),
        (
            '{ documents(after: "'
            + base64.urlsafe_b64encode(b"other:5").decode()
            + '") { totalCount } }',
            None,
            "BAD_USER_INPUT",
            "cursor",
        ),
        ("{ documents(first: -1) { totalCount } }", None, "BAD_USER_INPUT", "first"),
        ("{ entities(first: 1000) { totalCount } }", None, "BAD_USER_INPUT", "page size"),
        ('{ search(query: "x", k: 0, mode: VECTOR) { score } }', None, "BAD_USER_INPUT", "k must"),
        (
            '{ search(query: "x", k: 1000, mode: KEYWORD) { score } }',
            None,
            "BAD_USER_INPUT",
            "limit",
        ),
        ('{ search(query: "   ", mode: VECTOR) { score } }', None, "BAD_USER_INPUT", "empty"),
        ("{ documents { totalCount ", None, "GRAPHQL_PARSE_FAILED", "Syntax Error"),
        ("{ nope }", None, "GRAPHQL_VALIDATION_FAILED", "nope"),
        (
            "query($n: Int) { documents(first: $n) { totalCount } }",
            {"n": "ten"},
            "BAD_USER_INPUT",
            "$n",
        ),
    ],
)
async def test_bad_arguments_have_codes(
    server: LiveServer,
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None,
    code: str,
    says: str,
) -> None:
    body = await gql(http, server.graphql, query, variables)
    assert error_codes(body) == [code], body
    assert says in body["errors"][0]["message"]
    assert "Traceback" not in str(body)


async def test_not_json_is_a_client_error(server: LiveServer, http: httpx.AsyncClient) -> None:
    response = await http.post(
        server.graphql, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500


async def test_mutation_over_get_is_refused(server: LiveServer, http: httpx.AsyncClient) -> None:
    response = await http.get(
        server.graphql,
        params={"query": 'mutation { deleteDocument(id: "doc_x") { id } }'},
        headers={"accept": "application/json"},
    )
    assert 400 <= response.status_code < 500


async def test_server_keeps_serving(server: LiveServer, http: httpx.AsyncClient) -> None:
    body = await gql(http, server.graphql, "{ stats { documents chunks entities relations } }")
    assert set(data_of(body)["stats"]) == {"documents", "chunks", "entities", "relations"}
    assert server.process.poll() is None
