"""A scale-out deployment on the real servers of ``make services-up``: ``kg serve`` and
``kg worker`` processes sharing Neo4j (graph and vectors), Kafka and Redis.

Used by the multi-process test and the scale-out benchmark. The servers come from the
``KG_TEST_*`` variables that ``. .services/env`` sets.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import neo4j
import redis.asyncio as aioredis

from app.adapters.neo4j_vector_store import VECTOR_INDEX
from tests.support.graphql_client import data_of, gql
from tests.support.live_server import LiveServer, LiveWorker

SERVICE_VARIABLES = ("KG_TEST_NEO4J_URL", "KG_TEST_KAFKA_URL", "KG_TEST_REDIS_URL")
JOBS_DB = 1  # the Redis database of the jobs (the contract suites use 0)
INGEST = "mutation($inputs: [DocumentInput!]!) { ingestDocuments(inputs: $inputs) { id } }"
EVENTS = "subscription { ingestionEvents { jobId status stage } }"


def services_missing() -> list[str]:
    return [v for v in SERVICE_VARIABLES if not os.environ.get(v)]


def neo4j_driver() -> neo4j.Driver:
    password = os.environ.get("KG_TEST_NEO4J_PASSWORD") or None
    user = os.environ.get("KG_TEST_NEO4J_USER") or "neo4j"
    auth = None if password is None else (user, password)
    return neo4j.GraphDatabase.driver(os.environ["KG_TEST_NEO4J_URL"], auth=auth)


def wipe_neo4j() -> None:
    """Every node, and the vector index (other suites leave one of another dimension)."""
    with neo4j_driver() as driver, driver.session() as session:
        session.run(
            "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
        ).consume()
        session.run(f"DROP INDEX {VECTOR_INDEX} IF EXISTS").consume()


def redis_url(db: int = JOBS_DB) -> str:
    parts = urlsplit(os.environ["KG_TEST_REDIS_URL"])
    return urlunsplit(parts._replace(path=f"/{db}"))


async def flush_jobs() -> None:
    client = aioredis.from_url(redis_url())
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def backend_env(run: str, partitions: int = 4) -> dict[str, str]:
    """Every process of ``run`` on the same Neo4j, Kafka topics and Redis database."""
    neo4j_url = os.environ["KG_TEST_NEO4J_URL"]
    topics = (
        f"partitions={partitions}&requests_topic=kg-requests-{run}"
        f"&events_topic=kg-events-{run}&group_id=kg-workers-{run}"
    )
    return {
        "KG_GRAPH_URL": neo4j_url,
        "KG_VECTOR_URL": neo4j_url,
        "KG_NEO4J__USER": os.environ.get("KG_TEST_NEO4J_USER") or "neo4j",
        "KG_NEO4J__PASSWORD": os.environ.get("KG_TEST_NEO4J_PASSWORD") or "",
        "KG_BUS_URL": f"{os.environ['KG_TEST_KAFKA_URL']}?{topics}",
        "KG_JOBS_URL": redis_url(),
        "KG_CACHE_URL": redis_url(),
    }


def api_env(run: str) -> dict[str, str]:
    # stateless: no workers; one client polling jobs and submitting batches as fast as it
    # can is the load being measured, not an abuser to throttle
    return {**backend_env(run), "KG_PIPELINE__WORKERS": "0", "KG_RATE_LIMITS__ENABLED": "false"}


def worker_env(run: str, slots: int = 2) -> dict[str, str]:
    return {**backend_env(run), "KG_PIPELINE__WORKERS": str(slots)}


def log_events(worker: LiveWorker, name: str) -> list[dict[str, Any]]:
    """The worker's JSON log records named ``name``, oldest first."""
    found = []
    for line in worker.log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == name:
                found.append(record)
    return found


def wait_for_group(workers: list[LiveWorker], partitions: int = 4, timeout: float = 120) -> None:
    """Until the workers' latest assignments split every partition among all of them,
    so work submitted next is not moved by a late join."""
    deadline = time.monotonic() + timeout
    while True:
        latest = [log_events(w, "event_bus.partitions_assigned")[-1:] for w in workers]
        owned = [set(r[0]["partitions"]) if r else set() for r in latest]
        if all(owned) and sorted(p for o in owned for p in o) == list(range(partitions)):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the consumer group did not settle: {owned}")
        time.sleep(0.2)


async def wait_subscribed(api: LiveServer, http: httpx.AsyncClient) -> None:
    """Until ``api`` reports a live event subscription (the gauge in /metrics)."""
    async with asyncio.timeout(60):
        while True:
            metrics = (await http.get(f"{api.base}/metrics")).text
            line = next(
                (x for x in metrics.splitlines() if x.startswith("kg_event_subscriptions ")), ""
            )
            if line and float(line.split()[1]) >= 1:
                return
            await asyncio.sleep(0.1)


async def submit(
    http: httpx.AsyncClient, api: LiveServer, inputs: list[dict[str, Any]], batch: int = 100
) -> list[str]:
    """Ingest ``inputs`` through ``api`` in batches; the job ids, in order."""
    job_ids: list[str] = []
    for start in range(0, len(inputs), batch):
        body = await gql(http, api.graphql, INGEST, {"inputs": inputs[start : start + batch]})
        job_ids += [j["id"] for j in data_of(body)["ingestDocuments"]]
    return job_ids


async def watch_completions(
    events: AsyncIterator[dict[str, Any]], completed: dict[str, float]
) -> None:
    """Record when each job was first seen COMPLETED (events are at least once)."""
    async for payload in events:
        assert not payload.get("errors"), payload
        event = payload["data"]["ingestionEvents"]
        assert event["status"] != "FAILED", event
        if event["status"] == "COMPLETED":
            completed.setdefault(event["jobId"], time.monotonic())
