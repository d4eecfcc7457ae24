"""End-to-end ingestion throughput of the scale-out deployment with 1 and 2 workers.

One ``kg serve`` (no in-process workers) and N ``kg worker`` processes on Neo4j (graph
and vectors), Kafka and Redis, the servers of ``make services-up``. For each N, in one
run: wipe Neo4j and the jobs, start the processes, wait until the consumer group has
settled, submit the documents through the API and time until a subscriber on the API
has seen every job COMPLETED. Documents/s from the first submission to the last
completion; model loading is outside the timing.

Reproduce (after ``make services-up`` and ``. .services/env``):
``python -m tests.benchmarks.scale_out --documents 300 --workers 1 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.benchmarks.common import REPO, corpus, write_section
from tests.support.graphql_client import subscription
from tests.support.live_server import live_server, live_worker
from tests.support.scale_out import (
    EVENTS,
    api_env,
    flush_jobs,
    services_missing,
    submit,
    wait_for_group,
    wait_subscribed,
    watch_completions,
    wipe_neo4j,
    worker_env,
)

SERVICES = ("neo4j", "kafka", "redis")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def service_pids() -> dict[str, int]:
    """The servers of ``make services-up``, from their pid files (those that exist)."""
    root = Path(os.environ.get("KG_SERVICES_DIR") or REPO / ".services")
    pids = {}
    for name in SERVICES:
        path = root / name / f"{name}.pid"
        if path.exists():
            pids[name] = int(path.read_text().split()[0])
    return pids


def cpu_of(pids: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(cpu_seconds(p) for p in group) for name, group in pids.items()}


@dataclass(frozen=True)
class Run:
    workers: int
    documents: int
    seconds: float
    cpu: dict[str, float]  # CPU seconds in the timed window, by component

    @property
    def rate(self) -> float:
        return self.documents / self.seconds


async def measure(root: Path, inputs: list[dict[str, Any]], workers: int, slots: int) -> Run:
    run = uuid.uuid4().hex[:12]
    wipe_neo4j()
    await flush_jobs()
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(live_server(root / f"{run}-api", api_env(run)))
        started = [
            stack.enter_context(live_worker(root / f"{run}-w{i}", worker_env(run, slots)))
            for i in range(workers)
        ]
        wait_for_group(started)
        pids = {
            "kg worker": [w.process.pid for w in started],
            "kg serve": [api.process.pid],
            **{name.capitalize(): [pid] for name, pid in service_pids().items()},
        }
        async with httpx.AsyncClient(timeout=300) as http:
            completed: dict[str, float] = {}
            async with subscription(api.ws, EVENTS) as events:
                watcher = asyncio.create_task(watch_completions(events, completed))
                await wait_subscribed(api, http)
                cpu_before = cpu_of(pids)
                start = time.monotonic()
                job_ids = await submit(http, api, inputs)
                async with asyncio.timeout(3600):
                    while len(completed) < len(job_ids):
                        if watcher.done():
                            watcher.result()  # raises what ended it
                            raise RuntimeError("the subscription ended early")
                        await asyncio.sleep(0.05)
                cpu_after = cpu_of(pids)
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        end = max(completed[j] for j in job_ids)
    used = {name: cpu_after[name] - cpu_before[name] for name in pids}
    return Run(workers, len(inputs), end - start, used)


def report(runs: list[Run], args: argparse.Namespace, load: tuple[float, float]) -> str:
    by_workers: dict[int, list[Run]] = {}
    for r in runs:
        by_workers.setdefault(r.workers, []).append(r)
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, 2 cores "
        "shared by every process: the API, the workers, Neo4j, Kafka and Redis (load "
        f"average {load[0]:.1f} at the start, {load[1]:.1f} at the end). Each worker runs "
        f"{args.slots} batch slot(s) and one torch thread; graph and vectors in Neo4j, "
        "jobs in Redis, requests and events through Kafka (4 partitions). Reproduce, after "
        "`make services-up` and `. .services/env`: `python -m tests.benchmarks.scale_out "
        f"--documents {args.documents} --workers {' '.join(map(str, args.workers))} "
        f"--rounds {args.rounds}`.",
        "",
        f"{args.documents} Wikipedia paragraphs, submitted through the API in batches of "
        "100; timed from the first submission to the last COMPLETED event seen by a "
        "subscriber.",
        "",
        "| workers | documents/s (median) | seconds (every run) |",
        "|---|---|---|",
    ]
    medians: dict[int, float] = {}
    for n, rs in sorted(by_workers.items()):
        medians[n] = statistics.median(r.rate for r in rs)
        every = ", ".join(f"{r.seconds:.1f}" for r in rs)
        lines.append(f"| {n} | {medians[n]:.2f} | {every} |")
    components = list(runs[0].cpu)
    lines += [
        "",
        "Where the two cores went in the timed window (CPU seconds, last run of each; "
        "the share is of 2 cores x the wall time):",
        "",
        "| workers | " + " | ".join(components) + " | busy share of the 2 cores |",
        "|---|" + "---|" * (len(components) + 1),
    ]
    for n, rs in sorted(by_workers.items()):
        r = rs[-1]
        share = sum(r.cpu.values()) / (2 * r.seconds)
        cells = " | ".join(f"{r.cpu[c]:.1f}" for c in components)
        lines.append(f"| {n} | {cells} | {share:.0%} |")
    if 1 in medians and 2 in medians:
        lines += [
            "",
            f"2 workers / 1 worker = **{medians[2] / medians[1]:.2f}x**. Both workers share "
            "the same two cores with the servers, so this measures how well the "
            "deployment uses the machine, not what a second machine would add.",
        ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    missing = services_missing()
    if missing:
        raise SystemExit(
            f"set {', '.join(missing)}: run `make services-up`, then `. .services/env`"
        )
    rows = corpus(args.documents)
    if len(rows) < args.documents:
        raise SystemExit(f"only {len(rows)} documents available, asked for {args.documents}")
    inputs = [{"title": r["title"], "text": r["text"], "source": r.get("source")} for r in rows]
    load_start = os.getloadavg()[0]
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="kg-scale-out-") as tmp:
        for _ in range(args.rounds):
            for n in args.workers:
                result = await measure(Path(tmp), inputs, n, args.slots)
                print(f"{n} worker(s): {result.rate:.2f} documents/s ({result.seconds:.1f} s)")
                runs.append(result)
    wipe_neo4j()
    await flush_jobs()
    body = report(runs, args, (load_start, os.getloadavg()[0]))
    print(body)
    if not args.no_write:
        write_section("Scale-out ingestion: 1 and 2 workers", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--slots", type=int, default=2, help="batch slots per worker")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
