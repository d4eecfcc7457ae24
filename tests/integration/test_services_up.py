"""The loopback servers from ``make services-up`` answer the clients the app uses.

A smoke test of the environment, not of our adapters: when it fails, the adapters' server
tests would fail for reasons that have nothing to do with them. Runs when
``KG_TEST_SERVICES=1`` (``. .services/env`` sets it with the URLs); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import neo4j
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    InvalidReplicationFactorError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.structs import TopicPartition  # type: ignore[import-untyped]
from neo4j.exceptions import AuthError
from redis.exceptions import ResponseError

pytestmark = pytest.mark.skipif(
    os.environ.get("KG_TEST_SERVICES") != "1",
    reason="needs the real servers: run `make services-up`, then `. .services/env` "
    "(sets KG_TEST_SERVICES=1 and the KG_TEST_*_URL variables)",
)

ROOT = Path(__file__).resolve().parents[2]
NEO4J_URL = os.environ.get("KG_TEST_NEO4J_URL", "bolt://127.0.0.1:7687")
NEO4J_USER = os.environ.get("KG_TEST_NEO4J_USER", "neo4j")
KAFKA_URL = os.environ.get("KG_TEST_KAFKA_URL", "kafka://127.0.0.1:9092")
REDIS_URL = os.environ.get("KG_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DEADLINE_S = 60


def _neo4j_password() -> str:
    """The env wins; else the password services-up chose (empty: auth disabled)."""
    if "KG_TEST_NEO4J_PASSWORD" in os.environ:
        return os.environ["KG_TEST_NEO4J_PASSWORD"]
    stored = ROOT / ".services" / "neo4j" / "password"
    return stored.read_text(encoding="utf-8").strip() if stored.exists() else ""


def _bootstrap() -> str:
    parts = urlsplit(KAFKA_URL)
    assert parts.scheme == "kafka" and parts.hostname, f"not a kafka:// URL: {KAFKA_URL}"
    return f"{parts.hostname}:{parts.port or 9092}"


def _errors(response: object) -> dict[str, type[Exception] | None]:
    """Topic name -> aiokafka error class (None for success) of a Create/DeleteTopics answer."""
    answer = response.to_object()  # type: ignore[attr-defined]
    rows = answer.get("topic_errors") or answer.get("topic_error_codes") or []
    return {
        row["topic"]: (for_code(row["error_code"]) if row["error_code"] else None) for row in rows
    }


@pytest.fixture
async def kafka_admin() -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=_bootstrap(), request_timeout_ms=10_000)
    await admin.start()
    yield admin
    await admin.close()


@pytest.fixture
async def topic(kafka_admin: AIOKafkaAdminClient) -> AsyncIterator[str]:
    """A fresh one-partition topic (the broker does not auto-create), deleted afterwards."""
    name = f"kg-test-services-{uuid.uuid4().hex[:12]}"
    created = await kafka_admin.create_topics([NewTopic(name, 1, 1)])
    assert _errors(created) == {name: None}
    yield name
    deleted = await kafka_admin.delete_topics([name])
    assert _errors(deleted) == {name: None}


async def test_neo4j_answers_bolt_with_the_test_credentials() -> None:
    password = _neo4j_password()
    auth = (NEO4J_USER, password) if password else None
    async with neo4j.AsyncGraphDatabase.driver(NEO4J_URL, auth=auth) as driver:
        await driver.verify_connectivity()
        records, _, _ = await driver.execute_query("RETURN 1 AS one, $word AS word", word="ok")
        info = await driver.get_server_info()
    assert [(r["one"], r["word"]) for r in records] == [(1, "ok")]
    assert info.agent.startswith("Neo4j/5.26.")


async def test_neo4j_refuses_a_wrong_password() -> None:
    if not _neo4j_password():
        pytest.skip("Neo4j runs with auth disabled (set-initial-password failed at setup)")
    wrong = (NEO4J_USER, "not-the-" + uuid.uuid4().hex)
    async with neo4j.AsyncGraphDatabase.driver(NEO4J_URL, auth=wrong) as driver:
        with pytest.raises(AuthError):
            await driver.verify_connectivity()


async def test_kafka_round_trip_through_a_consumer_group(topic: str) -> None:
    bootstrap = _bootstrap()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"payload", key=b"doc-1")
    finally:
        await producer.stop()
    assert (sent.topic, sent.partition, sent.offset) == (topic, 0, 0)

    group = f"{topic}-group"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(DEADLINE_S):
            message = await consumer.getone()
            # Committing needs __consumer_offsets, i.e. a replication factor the single
            # broker can satisfy: this is what a misconfigured broker gets wrong.
            await consumer.commit()
            committed = await consumer.committed(TopicPartition(topic, 0))
    finally:
        await consumer.stop()
    assert (message.key, message.value, message.offset) == (b"doc-1", b"payload", 0)
    assert committed == 1


async def test_kafka_refuses_impossible_or_duplicate_topics(
    kafka_admin: AIOKafkaAdminClient, topic: str
) -> None:
    too_many_replicas = f"{topic}-rf2"
    answer = await kafka_admin.create_topics(
        [NewTopic(too_many_replicas, 1, 2), NewTopic(topic, 1, 1)]
    )
    assert _errors(answer) == {
        too_many_replicas: InvalidReplicationFactorError,
        topic: TopicAlreadyExistsError,
    }
    assert too_many_replicas not in await kafka_admin.list_topics()


async def test_redis_ping_set_get_and_a_type_error() -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    key = f"kg-test-services:{uuid.uuid4().hex}"
    try:
        assert await client.ping() is True
        assert await client.set(key, "value", ex=60) is True
        assert await client.get(key) == b"value"
        with pytest.raises(ResponseError, match="not an integer"):
            await client.incr(key)
        assert await client.delete(key) == 1
        assert await client.get(key) is None
    finally:
        await client.aclose()
