"""EventBus contract: one suite for every adapter (``BUSES``; Kafka slots in beside memory).

A factory receives a small per-subscriber buffer size so the slow-subscriber test can
overflow it quickly; an adapter without such a buffer may ignore it.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from app.adapters.kafka_event_bus import kafka_bus_from_url
from app.adapters.memory_event_bus import MemoryEventBus
from app.domain.errors import BadInputError, UnavailableError
from app.domain.models import (
    DocumentInput,
    IngestionEvent,
    IngestionRequest,
    JobStatus,
    Stage,
)
from app.ports.event_bus import Delivery, EventBus

BusFactory = Callable[[int], EventBus]

KAFKA_URL_VAR = "KG_TEST_KAFKA_URL"


def _kafka_bus(buffer: int) -> EventBus:
    """A bus on the test broker (``KG_TEST_KAFKA_URL``) with topics and a group of its own,
    so no test sees another's messages. One partition: Kafka keeps order per partition,
    and this suite checks the global order of requests."""
    url = os.environ.get(KAFKA_URL_VAR)
    if not url:
        pytest.skip(f"{KAFKA_URL_VAR} is not set: no Kafka broker to run the kafka event bus on")
    unique = f"kgtest-{uuid.uuid4().hex[:12]}"
    return kafka_bus_from_url(
        url,
        requests_topic=f"{unique}.requests",
        events_topic=f"{unique}.events",
        group_id=unique,
        partitions=1,
        max_queue=buffer,
    )


BUSES: dict[str, BusFactory] = {
    "memory": lambda buffer: MemoryEventBus(max_queue=buffer),
    "kafka": _kafka_bus,
}

BUFFER = 16
WAIT = 5.0  # seconds; generous for a loaded machine, fails fast on a hang


@pytest.fixture(params=sorted(BUSES))
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[EventBus]:
    instance = BUSES[request.param](BUFFER)
    await instance.start()
    yield instance
    await instance.close()


def event(job: str, seq: int) -> IngestionEvent:
    return IngestionEvent(
        job_id=job,
        status=JobStatus.RUNNING,
        stage=Stage.CHUNKED,
        progress=Stage.CHUNKED.progress,
        at=datetime.now(UTC),
        message=str(seq),
    )


def request_for(n: int) -> IngestionRequest:
    return IngestionRequest(
        job_id=f"job-{n}",
        document_id=f"doc-{n}",
        input=DocumentInput(title=f"t{n}", text=f"text {n}"),
        request_id=f"rid-{n}",
    )


async def take(events: AsyncIterator[IngestionEvent], n: int) -> list[IngestionEvent]:
    got: list[IngestionEvent] = []
    async with asyncio.timeout(WAIT):
        async for item in events:
            got.append(item)
            if len(got) == n:
                break
    return got


def keys(events: list[IngestionEvent]) -> list[tuple[str, str | None]]:
    return [(e.job_id, e.message) for e in events]


async def test_event_published_right_after_subscribing_is_delivered(bus: EventBus) -> None:
    subscription = bus.events()  # no await between subscribing and publishing
    await bus.publish_event(event("race", 0))
    assert keys(await take(subscription, 1)) == [("race", "0")]


async def test_order_is_kept_per_publisher(bus: EventBus) -> None:
    subscription = bus.events()

    async def publisher(job: str) -> None:
        for seq in range(50):
            await bus.publish_event(event(job, seq))
            if seq % 7 == 0:
                await asyncio.sleep(0)  # let the publishers interleave

    collector = asyncio.create_task(take(subscription, 100))
    await asyncio.gather(publisher("a"), publisher("b"))
    got = await collector
    for job in ("a", "b"):
        assert [e.message for e in got if e.job_id == job] == [str(s) for s in range(50)]
    assert {e.job_id for e in got[:60]} == {"a", "b"}  # really interleaved


async def test_every_subscriber_gets_every_event(bus: EventBus) -> None:
    subscriptions = [bus.events() for _ in range(3)]
    for seq in range(10):
        await bus.publish_event(event("j", seq))
    results = await asyncio.gather(*(take(s, 10) for s in subscriptions))
    for got in results:
        assert keys(got) == [("j", str(s)) for s in range(10)]


async def test_events_round_trip_every_field(bus: EventBus) -> None:
    sent = IngestionEvent(
        job_id="j-full",
        status=JobStatus.COMPLETED,
        stage=Stage.COMPLETED,
        progress=1.0,
        at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        message="done",
        document_id="doc-1",
    )
    subscription = bus.events()
    await bus.publish_event(sent)
    assert await take(subscription, 1) == [sent]


async def test_late_subscriber_sees_only_later_events(bus: EventBus) -> None:
    early = bus.events()
    await bus.publish_event(event("j", 0))
    await bus.publish_event(event("j", 1))
    late = bus.events()
    await bus.publish_event(event("j", 2))
    assert keys(await take(late, 1)) == [("j", "2")]
    assert keys(await take(early, 3)) == [("j", "0"), ("j", "1"), ("j", "2")]


async def test_close_ends_every_iterator_and_refuses_publishing(bus: EventBus) -> None:
    async def drain_events() -> int:
        return len([e async for e in bus.events()])

    async def drain_requests() -> int:
        return len([d async for d in bus.requests()])

    waiting = [asyncio.create_task(drain_events()) for _ in range(2)]
    waiting += [asyncio.create_task(drain_requests()) for _ in range(2)]
    await asyncio.sleep(0.05)  # all four are parked waiting
    assert not any(task.done() for task in waiting)
    await bus.close()
    async with asyncio.timeout(WAIT):
        assert await asyncio.gather(*waiting) == [0, 0, 0, 0]
    assert [e async for e in bus.events()] == []  # subscribing after close ends at once
    with pytest.raises(UnavailableError):
        await bus.publish_event(event("j", 0))
    with pytest.raises(UnavailableError):
        await bus.publish_request(request_for(0))
    await bus.close()  # idempotent


async def test_each_request_is_consumed_once_across_consumers(bus: EventBus) -> None:
    taken: dict[str, list[str]] = {"c1": [], "c2": []}
    total = 40

    async def consumer(name: str) -> None:
        async for delivery in bus.requests():
            taken[name].append(delivery.request.job_id)
            await delivery.ack()
            await asyncio.sleep(0)  # give the other consumer its turn
            if sum(len(v) for v in taken.values()) == total:
                await bus.close()

    consumers = [asyncio.create_task(consumer(name)) for name in taken]
    for n in range(total):
        await bus.publish_request(request_for(n))
    async with asyncio.timeout(WAIT):
        await asyncio.gather(*consumers)
    everything = taken["c1"] + taken["c2"]
    assert sorted(everything) == sorted(f"job-{n}" for n in range(total))
    assert len(set(everything)) == total  # nobody saw a request twice
    assert taken["c1"]  # both consumers did work
    assert taken["c2"]


async def test_requests_keep_order_and_every_field(bus: EventBus) -> None:
    for n in range(5):
        await bus.publish_request(request_for(n))
    got: list[Delivery] = []
    async with asyncio.timeout(WAIT):
        async for delivery in bus.requests():
            got.append(delivery)
            await delivery.ack()
            if len(got) == 5:
                break
    assert [d.request for d in got] == [request_for(n) for n in range(5)]


async def test_slow_subscriber_does_not_block_publisher_or_others(bus: EventBus) -> None:
    slow = bus.events()  # never read until the end
    fast = bus.events()
    burst = BUFFER * 4
    collector = asyncio.create_task(take(fast, burst))
    async with asyncio.timeout(WAIT):  # the publisher never waits for the slow reader
        for seq in range(burst):
            await bus.publish_event(event("burst", seq))
    assert keys(await collector) == [("burst", str(s)) for s in range(burst)]
    # Whatever the slow subscriber still gets comes in order, from the start.
    got = await take(slow, BUFFER)
    seqs = [int(e.message or "-1") for e in got]
    assert seqs == sorted(seqs)
    assert seqs[0] == 0


# --- memory-only guarantees ----------------------------------------------------------


async def test_memory_slow_subscriber_loses_newest_events_and_counts_them() -> None:
    from app.observability.metrics import sample_value

    bus = MemoryEventBus(max_queue=4)
    slow = bus.events()
    before = sample_value("kg_event_bus_dropped_events_total")
    for seq in range(10):
        await bus.publish_event(event("drop", seq))
    assert slow.dropped == 6
    assert sample_value("kg_event_bus_dropped_events_total") == before + 6
    assert [e.message for e in await take(slow, 4)] == ["0", "1", "2", "3"]
    await bus.publish_event(event("drop", 10))  # room again: delivery resumes
    assert [e.message for e in await take(slow, 1)] == ["10"]
    await bus.close()


async def test_memory_publish_request_waits_for_space() -> None:
    bus = MemoryEventBus(max_queue=2)
    await bus.publish_request(request_for(0))
    await bus.publish_request(request_for(1))
    blocked = asyncio.create_task(bus.publish_request(request_for(2)))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    assert bus.pending_requests == 2
    requests = bus.requests()
    first = await anext(requests)
    async with asyncio.timeout(WAIT):
        await blocked
    assert first.request.job_id == "job-0"
    assert bus.pending_requests == 2
    assert bus.unacked == 1
    await first.ack()
    await first.ack()  # idempotent
    assert bus.unacked == 0
    await bus.close()


async def test_memory_publisher_waiting_for_space_fails_when_the_bus_closes() -> None:
    bus = MemoryEventBus(max_queue=1)
    await bus.publish_request(request_for(0))
    blocked = asyncio.create_task(bus.publish_request(request_for(1)))
    await asyncio.sleep(0.01)
    await bus.close()
    with pytest.raises(UnavailableError):
        await blocked


async def test_memory_unsubscribing_stops_delivery() -> None:
    bus = MemoryEventBus()
    subscription = bus.events()
    kept = bus.events()
    assert bus.subscriber_count == 2
    await subscription.aclose()
    assert bus.subscriber_count == 1
    await bus.publish_event(event("j", 0))
    assert [e async for e in subscription] == []
    assert keys(await take(kept, 1)) == [("j", "0")]
    await bus.close()
    assert bus.subscriber_count == 0


def test_memory_bus_refuses_a_queue_smaller_than_one() -> None:
    with pytest.raises(BadInputError, match="max_queue"):
        MemoryEventBus(max_queue=0)


def test_memory_bus_satisfies_the_port() -> None:
    bus: EventBus = MemoryEventBus()  # checked by mypy; the call proves construction
    assert isinstance(bus, MemoryEventBus)
