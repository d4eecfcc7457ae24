"""What only the Kafka event bus promises, beyond the shared EventBus contract.

Partitioning by document id, a consumer group splitting the work, redelivery of what was
not acknowledged, commits of contiguous offsets only (on the broker and as a pure
class), events reaching every process, topic creation, and failures. The tests that
need a broker run when ``KG_TEST_KAFKA_URL`` names one (e.g. ``kafka://127.0.0.1:9092``)
and are skipped otherwise, saying why; each uses topics and a group of its own, deleted
when the module ends. URL, codec and bookkeeping tests run everywhere.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
import structlog
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError  # type: ignore[import-untyped]

from app.adapters.kafka_codec import (
    SCHEMA_VERSION,
    decode_event,
    decode_request,
    encode_event,
    encode_request,
    request_id_of,
)
from app.adapters.kafka_event_bus import KafkaEventBus, kafka_bus_from_url
from app.adapters.kafka_requests import ContiguousCommits, KafkaDelivery
from app.domain.errors import BackendError, BadInputError, ConfigurationError, UnavailableError
from app.domain.models import DocumentInput, IngestionEvent, IngestionRequest, JobStatus, Stage
from app.observability.logging import bind_request_id, clear_request_id, current_request_id
from app.observability.metrics import sample_value

KAFKA_URL = os.environ.get("KG_TEST_KAFKA_URL", "")
needs_broker = pytest.mark.skipif(
    not KAFKA_URL, reason="KG_TEST_KAFKA_URL is not set: no Kafka broker to test against"
)
WAIT = 20.0  # seconds; a group rebalance on a loaded 2-core machine takes a few
_created_topics: set[str] = set()


def _bootstrap() -> str:
    return KAFKA_URL.removeprefix("kafka://").split("?")[0]


@dataclass(frozen=True)
class Names:
    requests: str
    events: str
    group: str


@pytest.fixture
def names() -> Names:
    unique = f"kgtest-{uuid.uuid4().hex[:12]}"
    found = Names(f"{unique}.requests", f"{unique}.events", unique)
    _created_topics.update((found.requests, found.events))
    return found


@pytest.fixture(scope="module", autouse=True)
async def _topics_deleted() -> AsyncIterator[None]:
    yield
    if not KAFKA_URL or not _created_topics:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=_bootstrap())
    await admin.start()
    try:
        existing = set(await admin.list_topics()) & _created_topics
        if existing:
            await admin.delete_topics(sorted(existing))
    finally:
        await admin.close()
    _created_topics.clear()


def bus_on(names: Names, **options: object) -> KafkaEventBus:
    return kafka_bus_from_url(
        KAFKA_URL,
        requests_topic=names.requests,
        events_topic=names.events,
        group_id=names.group,
        **options,
    )


def request(
    job: int, document: str | None = None, request_id: str | None = None
) -> IngestionRequest:
    return IngestionRequest(
        job_id=f"job-{job}",
        document_id=document or f"doc-{job}",
        input=DocumentInput(title=f"t{job}", text=f"text {job}"),
        request_id=request_id,
    )


def event(job: str, seq: int) -> IngestionEvent:
    return IngestionEvent(
        job_id=job,
        status=JobStatus.RUNNING,
        stage=Stage.CHUNKED,
        progress=0.2,
        at=datetime.now(UTC),
        message=str(seq),
    )


async def take(bus: KafkaEventBus, n: int, *, ack: bool = True) -> list[KafkaDelivery]:
    got: list[KafkaDelivery] = []
    async with asyncio.timeout(WAIT):
        async for delivery in bus.requests():
            got.append(delivery)
            if ack:
                await delivery.ack()
            if len(got) == n:
                break
    return got


async def take_events(events: AsyncIterator[IngestionEvent], n: int) -> list[IngestionEvent]:
    got: list[IngestionEvent] = []
    async with asyncio.timeout(WAIT):
        async for item in events:
            got.append(item)
            if len(got) == n:
                break
    return got


async def committed(group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets on the broker, per partition of ``topic``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=_bootstrap())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# --- requests: partitions, groups, redelivery, commits -------------------------------


@needs_broker
async def test_requests_of_one_document_land_on_one_partition_in_order(names: Names) -> None:
    bus = bus_on(names, partitions=4)
    await bus.start()
    try:
        for n in range(12):
            await bus.publish_request(request(n, document="doc-same"))
            await bus.publish_request(request(100 + n))  # twelve other documents
        got = await take(bus, 24)
    finally:
        await bus.close()
    same = [d for d in got if d.request.document_id == "doc-same"]
    assert [d.request.job_id for d in same] == [f"job-{n}" for n in range(12)]
    assert len({d.partition for d in same}) == 1
    assert len({d.partition for d in got}) > 1  # other documents spread over partitions


@needs_broker
async def test_two_consumers_in_one_group_split_partitions_and_take_each_request_once(
    names: Names,
) -> None:
    first, second = bus_on(names, partitions=4), bus_on(names, partitions=4)
    await first.start()
    await second.start()
    taken: dict[str, list[KafkaDelivery]] = {"first": [], "second": []}

    async def consume(name: str, bus: KafkaEventBus) -> None:
        async for delivery in bus.requests():
            taken[name].append(delivery)
            await delivery.ack()

    tasks = [
        asyncio.create_task(consume("first", first)),
        asyncio.create_task(consume("second", second)),
    ]
    try:
        await wait_until(
            lambda: (
                first.assigned_partitions
                and second.assigned_partitions
                and first.assigned_partitions | second.assigned_partitions == {0, 1, 2, 3}
            ),
            "both consumers to hold partitions",
        )
        assert not first.assigned_partitions & second.assigned_partitions
        for n in range(40):
            await first.publish_request(request(n))
        await wait_until(lambda: sum(len(v) for v in taken.values()) >= 40, "40 deliveries")
        await asyncio.sleep(0.3)  # a duplicate would show up now
    finally:
        await first.close()
        await second.close()
        await asyncio.gather(*tasks)
    jobs = [d.request.job_id for v in taken.values() for d in v]
    assert sorted(jobs) == sorted(f"job-{n}" for n in range(40))  # each exactly once
    assert taken["first"] and taken["second"]
    offsets = await committed(names.group, names.requests)
    per_partition = {
        p: len([d for v in taken.values() for d in v if d.partition == p]) for p in range(4)
    }
    assert offsets == {p: count for p, count in per_partition.items() if count}  # all acked


@needs_broker
async def test_deliveries_whose_partition_moved_say_so_and_come_again(names: Names) -> None:
    """What lets a worker skip requests a rebalance gave to someone else (``moved``)."""
    first, second = bus_on(names, partitions=2), bus_on(names, partitions=2)
    await first.start()
    await second.start()
    taken: dict[str, list[KafkaDelivery]] = {"first": [], "second": []}

    async def consume(name: str, bus: KafkaEventBus) -> None:
        async for delivery in bus.requests():
            taken[name].append(delivery)  # never acknowledged

    tasks = [asyncio.create_task(consume("first", first))]
    try:
        for n in range(4):
            await first.publish_request(request(n))
        await wait_until(lambda: len(taken["first"]) == 4, "4 deliveries to the first")
        before = list(taken["first"])
        assert not any(d.moved for d in before)
        tasks.append(asyncio.create_task(consume("second", second)))
        await wait_until(
            lambda: first.assigned_partitions and second.assigned_partitions,
            "the partitions to be split",
        )
        assert all(d.moved for d in before)  # every partition was revoked once
        again = lambda: [d for v in taken.values() for d in v if d not in before]  # noqa: E731
        await wait_until(lambda: len(again()) == 4, "the 4 requests delivered again")
        assert not any(d.moved for d in again())
        assert sorted(d.request.job_id for d in again()) == [f"job-{n}" for n in range(4)]
    finally:
        await first.close()
        await second.close()
        await asyncio.gather(*tasks)


@needs_broker
async def test_an_unacknowledged_request_is_delivered_again_to_the_next_consumer(
    names: Names,
) -> None:
    first = bus_on(names, partitions=1)
    await first.start()
    for n in range(3):  # published before any consumer joined: still read (earliest)
        await first.publish_request(request(n))
    got = await take(first, 2, ack=False)
    await got[0].ack()  # job-1 is taken but never acknowledged
    await first.close()
    await got[1].ack()  # after close: nothing to commit to, and no error

    second = bus_on(names, partitions=1)
    await second.start()
    try:
        again = await take(second, 2)
    finally:
        await second.close()
    assert [d.request.job_id for d in got] == ["job-0", "job-1"]
    assert [d.request.job_id for d in again] == ["job-1", "job-2"]


@needs_broker
async def test_only_contiguous_acknowledgements_are_committed_on_the_broker(names: Names) -> None:
    bus = bus_on(names, partitions=1)
    await bus.start()
    try:
        for n in range(3):
            await bus.publish_request(request(n))
        got = await take(bus, 3, ack=False)
        assert [d.offset for d in got] == [0, 1, 2]
        await got[2].ack()
        await got[1].ack()
        assert await committed(names.group, names.requests) == {}  # offset 0 still open
        await got[0].ack()
        assert await committed(names.group, names.requests) == {0: 3}
        await got[0].ack()  # idempotent
        assert await committed(names.group, names.requests) == {0: 3}
    finally:
        await bus.close()


@needs_broker
async def test_an_unreadable_request_is_skipped_and_committed_past(names: Names) -> None:
    bus = bus_on(names, partitions=1)
    await bus.start()
    producer = AIOKafkaProducer(bootstrap_servers=_bootstrap())
    await producer.start()
    try:
        await producer.send_and_wait(names.requests, b"not json", key=b"doc-x")
        await producer.send_and_wait(names.requests, json.dumps({"v": 99}).encode(), key=b"doc-x")
        await bus.publish_request(request(7))
        got = await take(bus, 1)
        assert [d.request.job_id for d in got] == ["job-7"]
        assert got[0].offset == 2
        assert await committed(names.group, names.requests) == {0: 3}
    finally:
        await producer.stop()
        await bus.close()


@needs_broker
async def test_a_large_request_fits_the_topics_message_size(names: Names) -> None:
    bus = bus_on(names, partitions=1)
    await bus.start()
    big = IngestionRequest(
        job_id="job-big",
        document_id="doc-big",
        input=DocumentInput(title="big", text="é" * 1_000_000),  # 2 MB of UTF-8
    )
    try:
        await bus.publish_request(big)
        got = await take(bus, 1)
    finally:
        await bus.close()
    assert got[0].request == big


@needs_broker
async def test_the_request_id_travels_in_a_header_and_is_bound_when_consuming(
    names: Names,
) -> None:
    bus = bus_on(names, partitions=1)
    await bus.start()
    try:
        bind_request_id("rid-from-context")
        await bus.publish_request(request(1))  # no id of its own: the context's is sent
        await bus.publish_request(request(2, request_id="rid-own"))
        clear_request_id()
        seen: list[str | None] = []
        async with asyncio.timeout(WAIT):
            async for delivery in bus.requests():
                seen.append(current_request_id())
                await delivery.ack()
                if len(seen) == 2:
                    break
        assert seen == ["rid-from-context", "rid-own"]
    finally:
        clear_request_id()
        await bus.close()


# --- events --------------------------------------------------------------------------


@needs_broker
async def test_events_reach_every_process(names: Names) -> None:
    one, two = bus_on(names, partitions=3), bus_on(names, partitions=3)
    await one.start()
    await two.start()
    try:
        subscriptions = [one.events(), two.events()]
        for seq in range(10):
            for job in ("a", "b", "c"):
                await (one if seq % 2 else two).publish_event(event(job, seq))
        results = await asyncio.gather(*(take_events(s, 30) for s in subscriptions))
    finally:
        await one.close()
        await two.close()
    for got in results:
        for job in ("a", "b", "c"):  # order kept per job, whichever process published
            assert [e.message for e in got if e.job_id == job] == [str(s) for s in range(10)]


@needs_broker
async def test_a_slow_subscriber_loses_the_newest_events_and_counts_them(names: Names) -> None:
    bus = bus_on(names, partitions=1, max_queue=4)
    await bus.start()
    try:
        slow, fast = bus.events(), bus.events()
        before = sample_value("kg_event_bus_dropped_events_total")
        collector = asyncio.create_task(take_events(fast, 4))
        for seq in range(4):
            await bus.publish_event(event("drop", seq))
        await collector
        for seq in range(4, 10):
            await bus.publish_event(event("drop", seq))
        await wait_until(lambda: slow.dropped == 6, "six events dropped for the slow reader")
        assert fast.dropped == 2  # it read four, then stopped reading: room for four more
        assert sample_value("kg_event_bus_dropped_events_total") == before + 8
        assert [e.message for e in await take_events(slow, 4)] == ["0", "1", "2", "3"]
    finally:
        await bus.close()


@needs_broker
async def test_unsubscribing_stops_delivery(names: Names) -> None:
    bus = bus_on(names, partitions=1)
    await bus.start()
    try:
        gone, kept = bus.events(), bus.events()
        assert bus.subscriber_count == 2
        await gone.aclose()
        assert bus.subscriber_count == 1
        await bus.publish_event(event("j", 0))
        assert [e.message for e in await take_events(kept, 1)] == ["0"]
        assert [e async for e in gone] == []
    finally:
        await bus.close()
    assert bus.subscriber_count == 0


# --- topics and failures -------------------------------------------------------------


@needs_broker
async def test_topics_are_created_with_the_configured_partitions(names: Names) -> None:
    bus = bus_on(names, partitions=3)
    await bus.start()
    await bus.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=_bootstrap())
    await admin.start()
    try:
        described = await admin.describe_topics([names.requests, names.events])
    finally:
        await admin.close()
    assert {t["topic"]: len(t["partitions"]) for t in described} == {
        names.requests: 3,
        names.events: 3,
    }
    wider = bus_on(names, partitions=5)
    with structlog.testing.capture_logs() as logs:
        await wider.start()  # existing topics are fine; they keep their 3 partitions
    await wider.close()
    warned = [e for e in logs if e["event"] == "event_bus.topic_has_fewer_partitions"]
    assert sorted(e["topic"] for e in warned) == sorted([names.requests, names.events])
    assert {(e["partitions"], e["configured"]) for e in warned} == {(3, 5)}


@needs_broker
async def test_a_replication_the_cluster_cannot_hold_is_a_configuration_error(
    names: Names,
) -> None:
    bus = bus_on(names, replication=3)  # the test broker is a single node
    with pytest.raises(ConfigurationError, match="replication 3"):
        await bus.start()
    await bus.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_broker_that_is_down_fails_start_within_seconds() -> None:
    bus = KafkaEventBus(f"127.0.0.1:{_free_port()}", timeout=3.0)
    began = time.monotonic()
    with pytest.raises(UnavailableError) as caught:
        await bus.start()
    assert time.monotonic() - began < 5.0
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, KafkaError | TimeoutError)
    with pytest.raises(UnavailableError, match="not started"):
        await bus.publish_request(request(0))
    with pytest.raises(UnavailableError, match="not started"):
        bus.events()
    with pytest.raises(UnavailableError, match="not started"):
        await anext(bus.requests())
    await bus.close()
    with pytest.raises(UnavailableError, match="closed"):
        await bus.start()


# --- contiguous commits, as bookkeeping ----------------------------------------------


def test_commits_wait_for_the_oldest_delivery() -> None:
    commits = ContiguousCommits()
    epochs = [commits.delivered(0, offset) for offset in (5, 6, 7)]
    assert commits.acked(0, 6, epochs[1]) is None
    assert commits.acked(0, 7, epochs[2]) is None
    assert commits.outstanding(0) == 3
    assert commits.acked(0, 5, epochs[0]) == 8
    assert commits.committable(0) == 8
    assert commits.outstanding(0) == 0


def test_commits_advance_step_by_step_and_ignore_repeats_and_strangers() -> None:
    commits = ContiguousCommits()
    epoch = commits.delivered(0, 0)
    commits.delivered(0, 1)
    assert commits.acked(0, 0, epoch) == 1
    assert commits.acked(0, 0, epoch) is None  # repeated
    assert commits.acked(0, 42, epoch) is None  # never delivered
    assert commits.acked(0, 1, epoch) == 2
    assert commits.committable(0) == 2


def test_commits_follow_delivery_order_across_offset_gaps() -> None:
    commits = ContiguousCommits()  # compaction or transaction markers leave gaps
    epoch = 0
    for offset in (5, 9, 12):
        epoch = commits.delivered(0, offset)
    assert commits.acked(0, 9, epoch) is None
    assert commits.acked(0, 5, epoch) == 10
    assert commits.acked(0, 12, epoch) == 13


def test_partitions_commit_independently() -> None:
    commits = ContiguousCommits()
    a = commits.delivered(0, 3)
    b = commits.delivered(1, 3)
    commits.delivered(0, 4)
    assert commits.acked(1, 3, b) == 4
    assert commits.committable(0) is None
    assert commits.acked(0, 3, a) == 4


def test_a_revoked_partition_ignores_acknowledgements_of_its_old_deliveries() -> None:
    commits = ContiguousCommits()
    old = commits.delivered(0, 5)
    commits.revoke([0])
    assert commits.acked(0, 5, old) is None
    assert commits.committable(0) is None
    new = commits.delivered(0, 5)  # delivered again to this process after the rebalance
    assert new != old
    assert commits.acked(0, 5, old) is None
    assert commits.acked(0, 5, new) == 6


def test_a_delivery_out_of_order_is_refused() -> None:
    commits = ContiguousCommits()
    commits.delivered(0, 5)
    with pytest.raises(ValueError, match="out of order"):
        commits.delivered(0, 5)
    with pytest.raises(ValueError, match="out of order"):
        commits.delivered(0, 4)


# --- URLs and settings ---------------------------------------------------------------


def test_url_names_brokers_and_options() -> None:
    bus = kafka_bus_from_url(
        "kafka://k1:9092,k2,[::1]:9093?partitions=4&replication=2&group_id=g&client_id=c"
        "&requests_topic=r.t&events_topic=e.t"
    )
    assert bus.bootstrap == "k1:9092,k2:9092,[::1]:9093"
    assert (bus.partitions, bus.replication, bus.group_id, bus.client_id) == (4, 2, "g", "c")
    assert (bus.requests_topic, bus.events_topic) == ("r.t", "e.t")
    plain = kafka_bus_from_url("kafka://localhost", partitions=2)  # overrides win
    assert (plain.bootstrap, plain.partitions) == ("localhost:9092", 2)
    assert (plain.requests_topic, plain.events_topic, plain.group_id) == (
        "kg.ingestion.requests",
        "kg.ingestion.events",
        "kg-workers",
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis://k1:9092", "kafka://"),
        ("kafka://", "bad Kafka broker address"),
        ("kafka://k1:9092,", "bad Kafka broker address"),
        ("kafka://k1:port", "bad Kafka broker address"),
        ("kafka://k1:70000", "bad Kafka broker address"),
        ("kafka://user:secret@k1:9092", "credentials"),
        ("kafka://k1:9092/topic", "no path"),
        ("kafka://k1?partitions=many", "not a number"),
        ("kafka://k1?partitions=0", "partitions must be at least 1"),
        ("kafka://k1?replication=0", "replication must be at least 1"),
        ("kafka://k1?partitions=2&partitions=3", "given twice"),
        ("kafka://k1?compression=gzip", "unknown kafka:// URL option"),
        ("kafka://k1?requests_topic=bad/name", "not a valid Kafka topic name"),
        ("kafka://k1?requests_topic=same&events_topic=same", "must differ"),
        ("kafka://k1?group_id=", "must not be empty"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, why: str) -> None:
    with pytest.raises(ConfigurationError, match=why):
        kafka_bus_from_url(url)


def test_bad_constructor_arguments_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="max_queue"):
        KafkaEventBus("k1:9092", max_queue=0)
    with pytest.raises(ConfigurationError, match="bootstrap"):
        KafkaEventBus(" ")
    with pytest.raises(ConfigurationError, match="timeout"):
        KafkaEventBus("k1:9092", timeout=0)


# --- the message codec ---------------------------------------------------------------


def test_requests_and_events_round_trip_every_field() -> None:
    full = IngestionRequest(
        job_id="j",
        document_id="d",
        input=DocumentInput(
            title="T",
            text="naïve \u2603 text",
            source="s",
            published_at=datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=2))),
            metadata={"k": [1, 2.5, None, "x"]},
        ),
        request_id="rid",
    )
    assert decode_request(encode_request(full)) == full
    naive = IngestionRequest("j", "d", DocumentInput("T", "x", published_at=datetime(2024, 1, 1)))
    assert decode_request(encode_request(naive)) == naive  # naive stays naive
    sent = IngestionEvent("j", JobStatus.FAILED, Stage.FAILED, 1.0, datetime.now(UTC), "m", "d")
    assert decode_event(encode_event(sent)) == sent
    assert json.loads(encode_event(sent))["v"] == SCHEMA_VERSION


def test_the_header_supplies_a_missing_request_id_only() -> None:
    assert decode_request(encode_request(request(1)), "rid-h").request_id == "rid-h"
    assert decode_request(encode_request(request(1, request_id="own")), "rid-h").request_id == "own"
    assert request_id_of([("other", b"x"), ("request_id", b"rid")]) == "rid"
    assert request_id_of([("request_id", b"\xff")]) is None
    assert request_id_of(None) is None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"kind": "ingestion_request"}', "schema version None"),
        (b'{"v": 2, "kind": "ingestion_request"}', "schema version 2"),
        (b'{"v": 1, "kind": "ingestion_event"}', "expected a ingestion_request"),
        (b'{"v": 1, "kind": "ingestion_request", "job_id": "j"}', "malformed"),
        (
            b'{"v": 1, "kind": "ingestion_request", "job_id": 5, "document_id": "d",'
            b' "input": {"title": "t", "text": "x"}}',
            "malformed",
        ),
    ],
)
def test_malformed_requests_are_backend_errors(body: bytes, why: str) -> None:
    with pytest.raises(BackendError, match=why):
        decode_request(body)


def test_malformed_events_are_backend_errors() -> None:
    good = json.loads(encode_event(event("j", 0)))
    for change in ({"stage": "NOWHERE"}, {"progress": "high"}, {"progress": True}, {"at": None}):
        with pytest.raises(BackendError, match="malformed"):
            decode_event(json.dumps({**good, **change}).encode())


def test_what_json_cannot_hold_is_bad_input() -> None:
    odd = IngestionRequest("j", "d", DocumentInput("t", "x", metadata={"when": datetime.now()}))
    with pytest.raises(BadInputError, match="JSON"):
        encode_request(odd)
    with pytest.raises(BadInputError, match="JSON"):
        encode_request(IngestionRequest("j", "d", DocumentInput("t", "lone \ud800 surrogate")))
    nan = IngestionEvent("j", JobStatus.RUNNING, Stage.CHUNKED, math.nan, datetime.now(UTC))
    with pytest.raises(BadInputError, match="JSON"):
        encode_event(nan)


def test_kafka_bus_satisfies_the_port() -> None:
    from app.ports.event_bus import EventBus

    bus: EventBus = KafkaEventBus("k1:9092")  # checked by mypy; the call proves construction
    assert isinstance(bus, KafkaEventBus)
