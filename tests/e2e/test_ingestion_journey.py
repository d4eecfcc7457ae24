"""The newcomer's journey over real HTTP and WebSocket: ingest, watch, browse, search,
delete."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.support.graphql_client import data_of, gql, subscription
from tests.support.live_server import LiveServer

STAGES = ["QUEUED", "CHUNKED", "EXTRACTED", "RESOLVED", "EMBEDDED", "STORED", "COMPLETED"]

INGEST = """mutation($input: DocumentInput!) {
  ingestDocument(input: $input) { id status stage progress createdAt document { id } }
}"""
JOB = """query($id: ID!) { ingestionJob(id: $id) { id status stage progress error
  finishedAt document { id title chunkCount } } }"""
EVENTS = "subscription { ingestionEvents { jobId status stage progress message at } }"
PROGRESS = """subscription($id: ID!) { ingestionProgress(jobId: $id) {
  jobId status stage progress message } }"""


def apple_text(tag: str) -> str:
    return (
        "Steve Jobs founded Apple in Cupertino in 1976. "
        "Tim Cook, the CEO of Apple, visited Berlin last year. "
        f"Apple later opened an office in London. Marker {tag}."
    )


async def wait_job(http: httpx.AsyncClient, server: LiveServer, job: str) -> dict[str, Any]:
    for _ in range(600):
        state = data_of(await gql(http, server.graphql, JOB, {"id": job}))["ingestionJob"]
        if state["status"] in ("COMPLETED", "FAILED"):
            return dict(state)
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job} did not finish")


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_every_stage_is_streamed_in_order(
    server: LiveServer, http: httpx.AsyncClient, protocol: str
) -> None:
    tag = uuid.uuid4().hex
    async with subscription(server.ws, EVENTS, protocol=protocol) as events:
        await asyncio.sleep(0.3)  # the subscription is registered once the server acks it
        body = await gql(
            http,
            server.graphql,
            INGEST,
            {"input": {"title": f"Apple {tag}", "text": apple_text(tag)}},
        )
        job = data_of(body)["ingestDocument"]
        assert job["status"] == "QUEUED" and job["progress"] == 0.0
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(120):
            async for payload in events:
                event = payload["data"]["ingestionEvents"]
                if event["jobId"] == job["id"]:
                    seen.append(event)
                    if event["status"] in ("COMPLETED", "FAILED"):
                        break
    assert [e["stage"] for e in seen] == STAGES
    progress = [e["progress"] for e in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert seen[-1]["message"] and "entities" in seen[-1]["message"]


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_progress_of_one_job_ends_after_completion(
    server: LiveServer, http: httpx.AsyncClient, protocol: str
) -> None:
    tag = uuid.uuid4().hex
    long_text = " ".join(apple_text(f"{tag}-{i}") for i in range(40))
    job = data_of(
        await gql(http, server.graphql, INGEST, {"input": {"title": tag, "text": long_text}})
    )["ingestDocument"]
    stages: list[str] = []
    async with subscription(server.ws, PROGRESS, {"id": job["id"]}, protocol=protocol) as events:
        async with asyncio.timeout(120):
            async for payload in events:  # the iterator ends when the server completes
                event = payload["data"]["ingestionProgress"]
                assert event["jobId"] == job["id"]
                stages.append(event["stage"])
    assert stages[-1] == "COMPLETED"
    # It starts from the job's state when subscribing and never goes back.
    assert stages == [s for s in STAGES if s in stages]


async def test_progress_of_unknown_job_is_not_found(server: LiveServer) -> None:
    async with subscription(server.ws, PROGRESS, {"id": "job_doesnotexist"}) as events:
        payloads = [p async for p in events]
    assert any("NOT_FOUND" in str(p) for p in payloads), payloads


async def test_document_is_browsable_after_ingestion(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    tag = uuid.uuid4().hex
    job = data_of(
        await gql(
            http,
            server.graphql,
            INGEST,
            {
                "input": {
                    "title": f"Apple {tag}",
                    "text": apple_text(tag),
                    "source": "e2e",
                    "metadata": {"lang": "en", "n": 1},
                }
            },
        )
    )["ingestDocument"]
    done = await wait_job(http, server, job["id"])
    assert done["status"] == "COMPLETED", done
    doc_id = done["document"]["id"]
    query = """query($id: ID!) {
      document(id: $id) { id title source metadata chunkCount text
        chunks(first: 5) { totalCount edges { node { index text start end
          document { id } entities { name type } } } }
        entities(first: 20) { totalCount edges { node { id name type mentionCount
          documents(first: 5) { totalCount edges { node { id } } }
          relations(first: 10) { totalCount edges { node { type confidence
            source { name } target { name } evidence { text chunk { id } document { id } } } } }
        } } }
      }
      node(id: $id) { id ... on Document { title } }
    }"""
    doc = data_of(await gql(http, server.graphql, query, {"id": doc_id}))
    d = doc["document"]
    assert doc["node"] == {"id": doc_id, "title": f"Apple {tag}"}
    assert d["source"] == "e2e" and d["metadata"] == {"lang": "en", "n": 1}
    assert d["chunkCount"] == d["chunks"]["totalCount"] >= 1
    chunk = d["chunks"]["edges"][0]["node"]
    assert d["text"][chunk["start"] : chunk["end"]] == chunk["text"]
    names = {e["node"]["name"]: e["node"] for e in d["entities"]["edges"]}
    assert {"Steve Jobs", "Apple", "Tim Cook", "Berlin"} <= set(names), names
    assert names["Apple"]["type"] == "ORG" and names["Apple"]["mentionCount"] >= 3
    assert names["Steve Jobs"]["type"] == "PERSON"
    rels = [r["node"] for r in names["Apple"]["relations"]["edges"]]
    assert rels, "Apple has relations"
    for r in rels:
        assert r["evidence"], r  # every relation keeps the sentences it was read from
        assert all(ev["text"] for ev in r["evidence"])
    # Apple is shared with the other tests' documents; this one's evidence is among them.
    assert any(ev["document"]["id"] == doc_id for r in rels for ev in r["evidence"])
    pairs = {(r["source"]["name"], r["type"], r["target"]["name"]) for r in rels}
    assert any(s == "Tim Cook" and t == "Apple" for s, _, t in pairs), pairs


async def test_same_document_twice_is_one_document(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    tag = uuid.uuid4().hex
    doc = {"title": f"Twice {tag}", "text": apple_text(tag)}
    first = data_of(await gql(http, server.graphql, INGEST, {"input": doc}))["ingestDocument"]
    first_done = await wait_job(http, server, first["id"])
    before = data_of(await gql(http, server.graphql, "{ stats { documents chunks } }"))["stats"]
    # Whitespace differences normalise away: still the same document.
    again = {"title": doc["title"], "text": "  " + doc["text"].replace(" ", "  ") + "\n"}
    second = data_of(await gql(http, server.graphql, INGEST, {"input": again}))["ingestDocument"]
    assert second["status"] == "COMPLETED" and second["progress"] == 1.0
    assert second["document"]["id"] == first_done["document"]["id"]
    after = data_of(await gql(http, server.graphql, "{ stats { documents chunks } }"))["stats"]
    assert after == before


async def test_search_by_vector_and_keyword(server: LiveServer, http: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex
    text = f"The volcano Eyjafjallajokull erupted in Iceland, halting flights. Code {tag}."
    job = data_of(
        await gql(
            http, server.graphql, INGEST, {"input": {"title": f"Volcano {tag}", "text": text}}
        )
    )["ingestDocument"]
    done = await wait_job(http, server, job["id"])
    doc_id = done["document"]["id"]
    search = """query($q: String!, $mode: SearchMode, $f: SearchFilter) {
      search(query: $q, k: 3, mode: $mode, filter: $f) { score text document { id } chunk { id } } }"""
    vector = data_of(
        await gql(
            http,
            server.graphql,
            search,
            {"q": "an eruption in Iceland stopped air travel", "mode": "VECTOR"},
        )
    )["search"]
    assert vector and vector[0]["document"]["id"] == doc_id
    assert 0.3 < vector[0]["score"] <= 1.0001
    keyword = data_of(await gql(http, server.graphql, search, {"q": tag, "mode": "KEYWORD"}))[
        "search"
    ]
    assert [h["document"]["id"] for h in keyword] == [doc_id]
    filtered = data_of(
        await gql(
            http,
            server.graphql,
            search,
            {"q": "Iceland", "mode": "VECTOR", "f": {"documentIds": ["doc_none"]}},
        )
    )["search"]
    assert filtered == []
    hybrid = data_of(await gql(http, server.graphql, search, {"q": tag}))["search"]  # default
    # first of the keyword list: 1/61, plus 1/(60 + its vector rank) if it has one
    assert doc_id in [h["document"]["id"] for h in hybrid]
    assert all(0 < h["score"] <= 2 / 61 + 1e-9 for h in hybrid)
    assert hybrid[0]["score"] >= 1 / 61 - 1e-9


async def test_delete_removes_document_and_orphans(
    server: LiveServer, http: httpx.AsyncClient
) -> None:
    tag = uuid.uuid4().hex
    text = f"Zorblax Quintero founded Vexmoor Industries in Ulaanbaatar. Ref {tag}."
    job = data_of(
        await gql(http, server.graphql, INGEST, {"input": {"title": f"Del {tag}", "text": text}})
    )["ingestDocument"]
    doc_id = (await wait_job(http, server, job["id"]))["document"]["id"]
    before = data_of(
        await gql(http, server.graphql, "{ stats { documents chunks entities relations } }")
    )["stats"]
    deleted = data_of(
        await gql(
            http,
            server.graphql,
            "mutation($id: ID!) { deleteDocument(id: $id) { id deleted removedEntities removedRelations } }",
            {"id": doc_id},
        )
    )["deleteDocument"]
    assert deleted["deleted"] is True and deleted["id"] == doc_id
    assert deleted["removedEntities"] >= 2
    after = data_of(
        await gql(http, server.graphql, "{ stats { documents chunks entities relations } }")
    )["stats"]
    assert after["documents"] == before["documents"] - 1
    assert after["entities"] == before["entities"] - deleted["removedEntities"]
    gone = data_of(
        await gql(
            http, server.graphql, "query($id: ID!) { document(id: $id) { id } }", {"id": doc_id}
        )
    )
    assert gone["document"] is None
    hits = data_of(
        await gql(
            http,
            server.graphql,
            "query($q: String!) { search(query: $q, mode: KEYWORD) { document { id } } }",
            {"q": tag},
        )
    )["search"]
    assert hits == []
    vec = data_of(
        await gql(
            http,
            server.graphql,
            "query($q: String!) { search(query: $q, k: 50, mode: VECTOR) { document { id } } }",
            {"q": text},
        )
    )["search"]
    assert doc_id not in {h["document"]["id"] for h in vec}


async def test_metrics_and_health(server: LiveServer, http: httpx.AsyncClient) -> None:
    assert (await http.get(f"{server.base}/healthz")).json() == {"status": "ok"}
    ready = await http.get(f"{server.base}/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = await http.get(f"{server.base}/metrics")
    assert metrics.status_code == 200
    assert "kg_backend_calls_total" in metrics.text
    response = await http.post(
        server.graphql,
        json={"query": "{ stats { documents } }"},
        headers={"x-request-id": "test-rid-1"},
    )
    assert response.headers["x-request-id"] == "test-rid-1"
