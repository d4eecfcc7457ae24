"""Publish-to-subscriber latency of ingestion events: Kafka, next to the in-process bus.

    python -m tests.benchmarks.kafka_latency [--events 2000] [--rate 200] [--burst 2000]

The broker comes from KG_TEST_KAFKA_URL (as written by ``ops/services/services.sh up``)
or --kafka-url. Each run makes its own topics (``kg.bench.<run id>.*``) and deletes them
at the end.

Two ``KafkaEventBus`` instances share the topics, as two API processes would: one
publishes ``IngestionEvent`` objects, the other's ``events()`` subscription receives
them (both in this process, so one monotonic clock times both ends). Latency is from
just before ``publish_event`` to the subscriber's ``__anext__`` returning. The floor
beside it is the ``MemoryEventBus``, publisher and subscriber on one instance.

Events follow jobs: seven each (QUEUED to COMPLETED), a job's events published one after
another (each awaits the previous, as a worker does) while ``--in-flight`` jobs
interleave. Two runs per bus:
- steady: one event every 1/``--rate`` s;
- burst: every job at once, as fast as the bus takes them.
Every event must arrive exactly once, in order within its job (Kafka keys events by job
id, so a job's events share a partition); otherwise the script reports nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

# aiokafka ships no type information (no py.typed); its objects are Any here.
from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

from app.adapters.kafka_event_bus import KafkaEventBus, kafka_bus_from_url
from app.adapters.memory_event_bus import MemoryEventBus
from app.domain.models import IngestionEvent, JobStatus, Stage
from tests.benchmarks.common import write_section

STAGES = (
    Stage.QUEUED,
    Stage.CHUNKED,
    Stage.EXTRACTED,
    Stage.RESOLVED,
    Stage.EMBEDDED,
    Stage.STORED,
    Stage.COMPLETED,
)
_STATUS = {Stage.QUEUED: JobStatus.QUEUED, Stage.COMPLETED: JobStatus.COMPLETED}
GRACE = 1.0  # seconds to wait after the last expected event, for duplicates


class Publisher(Protocol):
    async def publish_event(self, event: IngestionEvent) -> None: ...


def plan(prefix: str, events: int, in_flight: int) -> list[IngestionEvent]:
    """About ``events`` events of ``events / 7`` jobs, in publish order: jobs in groups
    of ``in_flight``, each group's first stage for every job, then the next stage..."""
    jobs = max(1, round(events / len(STAGES)))
    out: list[IngestionEvent] = []
    for first in range(0, jobs, in_flight):
        group = range(first, min(first + in_flight, jobs))
        for stage in STAGES:
            out += [
                IngestionEvent(
                    job_id=f"{prefix}-{j}",
                    status=_STATUS.get(stage, JobStatus.RUNNING),
                    stage=stage,
                    progress=stage.progress,
                    at=datetime.now(UTC),
                    document_id=f"doc_{prefix}-{j}",
                )
                for j in group
            ]
    return out


@dataclass(frozen=True)
class Run:
    name: str
    events: list[IngestionEvent]
    rate: float | None  # events/s; None: all at once


class DeliveryError(Exception):
    """Some events did not arrive exactly once, in order."""


@dataclass
class Result:
    bus: str
    run: str
    events: int
    publish_seconds: float
    latencies_ms: list[float]
    acks_ms: list[float]  # how long publish_event took


async def measure(
    bus: str, run: Run, publisher: Publisher, received: AsyncIterator[IngestionEvent]
) -> Result:
    """Publish the run's events and time each one's arrival at ``received``; raises
    ``DeliveryError`` unless each arrives exactly once, in order within its job."""
    events, rate = run.events, run.rate
    sent: dict[tuple[str, Stage], float] = {}
    acks: list[float] = []
    arrived: list[tuple[IngestionEvent, float]] = []
    done = asyncio.Event()

    async def receive() -> None:
        async for event in received:
            arrived.append((event, time.perf_counter()))
            if len(arrived) >= len(events):
                done.set()

    async def publish(event: IngestionEvent, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await previous  # a job's events go out one after another
        t0 = time.perf_counter()
        sent[(event.job_id, event.stage)] = t0
        await publisher.publish_event(event)
        acks.append((time.perf_counter() - t0) * 1000)

    reader = asyncio.create_task(receive())
    try:
        chains: dict[str, asyncio.Task[None]] = {}
        start = time.perf_counter()
        for i, event in enumerate(events):
            if rate is not None and (wait := start + i / rate - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            chains[event.job_id] = asyncio.create_task(publish(event, chains.get(event.job_id)))
        await asyncio.gather(*chains.values())
        publish_seconds = time.perf_counter() - start
        with suppress(TimeoutError):
            async with asyncio.timeout(30):
                await done.wait()
        await asyncio.sleep(GRACE)
    finally:
        reader.cancel()
        with suppress(asyncio.CancelledError):
            await reader
    check(f"{bus}, {run.name}", events, [e for e, _ in arrived])
    latencies = [(t - sent[(e.job_id, e.stage)]) * 1000 for e, t in arrived]
    return Result(bus, run.name, len(events), publish_seconds, latencies, acks)


def check(what: str, published: list[IngestionEvent], arrived: list[IngestionEvent]) -> None:
    """Exactly once, in stage order, per job; nothing foreign."""
    expected: dict[str, list[Stage]] = {}
    for e in published:
        expected.setdefault(e.job_id, []).append(e.stage)
    got: dict[str, list[Stage]] = {}
    for e in arrived:
        got.setdefault(e.job_id, []).append(e.stage)
    wrong = [job for job in expected.keys() | got.keys() if expected.get(job) != got.get(job)]
    if wrong:
        job = sorted(wrong)[0]
        raise DeliveryError(
            f"{what}: {len(wrong)} of {len(expected)} jobs did not get their events exactly "
            f"once in order ({len(arrived)} of {len(published)} arrived), e.g. {job}: "
            f"sent {expected.get(job)}, got {got.get(job)}"
        )


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# --- the buses ----------------------------------------------------------------------------


async def run_memory(runs: list[Run]) -> list[Result]:
    bus = MemoryEventBus(max_queue=max(10_000, *(len(r.events) for r in runs)))
    await bus.start()
    try:
        subscription = bus.events()
        return [await measure("memory", run, bus, subscription) for run in runs]
    finally:
        await bus.close()


async def run_kafka(url: str, run_id: str, runs: list[Run]) -> tuple[list[Result], int, int]:
    """Results, partitions of the events topic and brokers in the cluster."""
    topics = {
        "requests_topic": f"kg.bench.{run_id}.requests",
        "events_topic": f"kg.bench.{run_id}.events",
    }
    size = max(10_000, *(len(r.events) for r in runs))

    def new(role: str) -> KafkaEventBus:
        return kafka_bus_from_url(url, **topics, client_id=f"kg-bench-{role}", max_queue=size)

    publisher, subscriber = new("publisher"), new("subscriber")
    try:
        await publisher.start()
        await subscriber.start()
        subscription = subscriber.events()
        # Connections, metadata and the first fetch, outside the timings.
        warm = Run("warm-up", plan(f"warm-{run_id}", 70, 10), None)
        await measure("kafka", warm, publisher, subscription)
        results = [await measure("kafka", run, publisher, subscription) for run in runs]
        brokers = await _brokers(publisher.bootstrap)
        return results, publisher.partitions, brokers
    finally:
        await subscriber.close()
        await publisher.close()
        await _delete_topics(publisher.bootstrap, list(topics.values()))


async def _admin(bootstrap: str, work: Callable[[Any], Any]) -> Any:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="kg-bench-admin")
    await admin.start()
    try:
        return await work(admin)
    finally:
        await admin.close()


async def _brokers(bootstrap: str) -> int:
    cluster = await _admin(bootstrap, lambda admin: admin.describe_cluster())
    return len(cluster.get("brokers") or ())


async def _delete_topics(bootstrap: str, topics: list[str]) -> None:
    try:
        await _admin(bootstrap, lambda admin: admin.delete_topics(topics))
    except Exception as exc:  # the topics only cost disk until their retention ends
        print(f"could not delete the topics {topics}: {exc}", file=sys.stderr)


# --- the report ---------------------------------------------------------------------------


def row(r: Result) -> str:
    lat = r.latencies_ms
    figures = " | ".join(f"{percentile(lat, q):.2f}" for q in (0.5, 0.95, 0.99))
    return (
        f"| {r.bus} | {r.run} | {r.events} | {r.events / r.publish_seconds:.0f} | "
        f"{figures} | {max(lat):.2f} | {percentile(r.acks_ms, 0.5):.2f} |"
    )


def report(results: list[Result]) -> str:
    by = {(r.bus, r.run): r for r in results}
    lines = [
        "| bus | run | events | published/s | p50 ms | p95 ms | p99 ms | max ms "
        "| publish_event p50 ms |",
        "|---|---|---|---|---|---|---|---|---|",
        *(row(r) for r in results),
        "",
    ]
    for run in dict.fromkeys(r.run for r in results):
        kafka, memory = by.get(("kafka", run)), by.get(("memory", run))
        if kafka and memory:
            p50 = percentile(kafka.latencies_ms, 0.5) - percentile(memory.latencies_ms, 0.5)
            p99 = percentile(kafka.latencies_ms, 0.99) - percentile(memory.latencies_ms, 0.99)
            lines.append(f"- {run}: Kafka adds {p50:.2f} ms at p50, {p99:.2f} ms at p99.")
    lines.append(
        "- Every event arrived exactly once and in order within its job, on both buses, "
        "in every run."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000, help="events of the steady run")
    parser.add_argument("--rate", type=float, default=200.0, help="events/s of the steady run")
    parser.add_argument("--burst", type=int, default=2000, help="events of the burst run (0: none)")
    parser.add_argument("--in-flight", type=int, default=10, help="jobs interleaved, steady run")
    parser.add_argument("--kafka-url", default=os.environ.get("KG_TEST_KAFKA_URL"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not args.kafka_url:
        parser.error(
            "no Kafka broker: set KG_TEST_KAFKA_URL (kafka://host:port) or pass --kafka-url; "
            "`bash ops/services/services.sh up` starts one and writes it to .services/env"
        )
    if args.events < 1 or args.burst < 0 or args.rate <= 0 or args.in_flight < 1:
        parser.error("--events, --rate and --in-flight must be positive, --burst not negative")

    run_id = uuid.uuid4().hex[:12]

    def runs(bus: str) -> list[Run]:
        """The runs of one bus, with job ids of its own."""
        steady = plan(f"{bus}-steady-{run_id}", args.events, args.in_flight)
        out = [Run(f"steady {args.rate:g}/s, {args.in_flight} jobs in flight", steady, args.rate)]
        if args.burst:
            burst = plan(f"{bus}-burst-{run_id}", args.burst, args.burst)
            out.append(Run(f"burst: {len(burst) // len(STAGES)} jobs at once", burst, None))
        return out

    load_before = os.getloadavg()[0]
    try:
        memory = asyncio.run(run_memory(runs("memory")))
        kafka, partitions, brokers = asyncio.run(run_kafka(args.kafka_url, run_id, runs("kafka")))
    except DeliveryError as exc:
        sys.exit(f"{exc}; nothing reported")
    load_after = os.getloadavg()[0]

    results = [r for pair in zip(memory, kafka, strict=True) for r in pair]
    text = report(results)
    print(text, flush=True)
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores shared by the client, the broker and other work (load "
        f"average {load_before:.1f} at the start, {load_after:.1f} at the end). Kafka: "
        f"{brokers} broker(s) on loopback, events topic of {partitions} partitions, "
        "acks=all, idempotent producer; publisher and subscriber are two bus instances "
        "in one process. Latency: from just before `publish_event` to the event leaving "
        "the subscriber's `events()` iterator. Reproduce, with KG_TEST_KAFKA_URL set "
        "(`. .services/env`): `python -m tests.benchmarks.kafka_latency "
        f"--events {args.events} --rate {args.rate:g} --burst {args.burst} "
        f"--in-flight {args.in_flight}`."
    )
    if not args.no_write:
        write_section("Event latency: Kafka against the in-process bus", header + "\n\n" + text)


if __name__ == "__main__":
    main()
