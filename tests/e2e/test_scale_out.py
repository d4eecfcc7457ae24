"""Scale-out for real: two API processes and two ``kg worker`` processes sharing Neo4j
(graph and vectors), Kafka and Redis, one worker killed with SIGKILL midway.

200 documents go in through API A while a client subscribed on API B watches every job
reach COMPLETED. Afterwards the graph must hold every document exactly once: the Neo4j
contents (ids of documents, chunks, entities, relations and vectors, every mention and
every piece of evidence, counts of every label and relationship type) equal those of a
single clean in-process ingestion of the same documents into the same server; and no
job is left unfinished in Redis.

Needs the servers of ``make services-up`` (``KG_TEST_*`` variables); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.adapters.redis_job_store import RedisJobStore
from app.config import load_settings
from app.container import build_container
from app.domain.models import DocumentInput
from tests.integration.corpus_run import ingest_all, sample_documents
from tests.support.graphql_client import data_of, gql, subscription
from tests.support.live_server import LiveServer, LiveWorker, live_server, live_worker
from tests.support.scale_out import (
    EVENTS,
    api_env,
    backend_env,
    flush_jobs,
    log_events,
    neo4j_driver,
    redis_url,
    services_missing,
    submit,
    wait_for_group,
    wait_subscribed,
    watch_completions,
    wipe_neo4j,
    worker_env,
)

DOCUMENTS = 200
KILL_AFTER = 60  # COMPLETED jobs seen before one worker is killed

pytestmark = [
    pytest.mark.skipif(
        bool(services_missing()),
        reason="needs Neo4j, Kafka and Redis: run `make services-up` and `. .services/env`",
    ),
    pytest.mark.timeout(900),
]

JOB = "query($id: ID!) { ingestionJob(id: $id) { id status stage error } }"

# What "the same graph" means, read straight from Neo4j.
SNAPSHOT = {
    "labels": "MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS n ORDER BY label",
    "relationships": "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n ORDER BY type",
    "documents": "MATCH (d:Document) RETURN d.id AS id ORDER BY id",
    "chunks": "MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) RETURN d.id, c.id ORDER BY c.id",
    "entities": "MATCH (e:Entity) RETURN e.id, e.name, e.type, e.aliases ORDER BY e.id",
    "relations": (
        "MATCH (s:Entity)<-[:SOURCE]-(r:Relation)-[:TARGET]->(t:Entity) "
        "RETURN r.id, r.type, s.id, t.id, r.confidence ORDER BY r.id"
    ),
    "mentions": (
        "MATCH (c:Chunk)-[m:MENTIONS]->(e:Entity) "
        "RETURN c.id AS c, e.id AS e, m.start AS s, m.end AS t ORDER BY c, e, s, t"
    ),
    "evidence": (
        "MATCH (r:Relation)-[x:EVIDENCED_BY]->(c:Chunk) "
        "RETURN r.id AS r, c.id AS c, x.text AS text ORDER BY r, c, text"
    ),
    "vectors": "MATCH (v:ChunkVector) RETURN v.chunk_id AS c, v.document_id ORDER BY c",
}


def snapshot() -> dict[str, list[list[Any]]]:
    with neo4j_driver() as driver, driver.session() as session:
        return {name: [list(r.values()) for r in session.run(q)] for name, q in SNAPSHOT.items()}


def as_input(doc: DocumentInput) -> dict[str, Any]:
    return {"title": doc.title, "text": doc.text, "source": doc.source}


@contextlib.contextmanager
def cluster(root: Path, run: str) -> Iterator[tuple[LiveServer, LiveServer, list[LiveWorker]]]:
    with (
        live_server(root / "api-a", api_env(run)) as api_a,
        live_server(root / "api-b", api_env(run)) as api_b,
        live_worker(root / "worker-1", worker_env(run)) as worker_1,
        live_worker(root / "worker-2", worker_env(run)) as worker_2,
    ):
        wait_for_group([worker_1, worker_2])
        yield api_a, api_b, [worker_1, worker_2]


async def wait_until(done: Any, watcher: asyncio.Task[None], seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not done():
            assert not watcher.done(), watcher  # the subscription must stay open
            await asyncio.sleep(0.05)


async def test_two_apis_two_workers_one_killed_store_every_document_once(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:12]
    docs = sample_documents(DOCUMENTS)
    assert len(docs) == DOCUMENTS
    wipe_neo4j()
    await flush_jobs()

    with cluster(tmp_path, run) as (api_a, api_b, workers):
        victim, survivor = workers
        async with httpx.AsyncClient(timeout=120) as http:
            completed: dict[str, float] = {}
            async with subscription(api_b.ws, EVENTS) as events:
                watcher = asyncio.create_task(watch_completions(events, completed))
                await wait_subscribed(api_b, http)
                job_ids = await submit(http, api_a, [as_input(d) for d in docs])
                assert len(set(job_ids)) == DOCUMENTS

                await wait_until(lambda: len(completed) >= KILL_AFTER, watcher, 300)
                victim.process.send_signal(signal.SIGKILL)
                victim.process.wait()
                killed_at = time.monotonic()
                assert len(completed) < DOCUMENTS, "the kill came after the work was done"

                await wait_until(lambda: len(completed) == DOCUMENTS, watcher, 300)
                assert survivor.process.poll() is None, survivor.log()[-4000:]
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

            # the subscriber on B saw exactly the jobs submitted on A, each COMPLETED
            assert set(completed) == set(job_ids)
            assert any(at > killed_at for at in completed.values())
            # the survivor took over the victim's partitions after the kill
            assert log_events(victim, "ingestion.completed")
            assigned = log_events(survivor, "event_bus.partitions_assigned")
            assert sorted(assigned[-1]["partitions"]) == [0, 1, 2, 3]
            # every job reads COMPLETED from either API (shared job state)
            for api, sample in ((api_a, job_ids[::10]), (api_b, job_ids)):
                for job in sample:
                    state = data_of(await gql(http, api.graphql, JOB, {"id": job}))
                    assert state["ingestionJob"]["status"] == "COMPLETED", state
            stats = data_of(await gql(http, api_b.graphql, "{ stats { documents } }"))
            assert stats["stats"]["documents"] == DOCUMENTS

    jobs = RedisJobStore(redis_url())
    await jobs.start()
    try:
        assert await jobs.unfinished() == []  # no job stuck
    finally:
        await jobs.close()

    scaled_out = snapshot()
    wipe_neo4j()
    reference = await clean_single_ingestion(tmp_path / "reference", docs)
    for part in SNAPSHOT:
        assert scaled_out[part] == reference[part], part
    counts = dict(reference["labels"])
    assert counts["Document"] == DOCUMENTS and counts["ChunkVector"] == counts["Chunk"]


async def clean_single_ingestion(
    data_dir: Path, docs: list[DocumentInput]
) -> dict[str, list[list[Any]]]:
    """The same documents into the same (wiped) Neo4j by one in-process worker."""
    env = backend_env("reference")
    settings = load_settings(
        data_dir=data_dir,
        graph_url=env["KG_GRAPH_URL"],
        vector_url=env["KG_VECTOR_URL"],
        neo4j={"user": env["KG_NEO4J__USER"], "password": env["KG_NEO4J__PASSWORD"] or None},
    )
    container = build_container(settings)
    await container.start()
    try:
        await container.wait_ready()
        await ingest_all(container, docs)
    finally:
        await container.close()
    return snapshot()
