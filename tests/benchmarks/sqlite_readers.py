"""Concurrent reads on the SQLite graph store: one query-only connection against two.

Why: ``SqliteGraphStore`` spreads reads over its reader connections (each its own
thread; SQLite lets go of the GIL while it steps), so reads that run at once (one
``ask``'s walks and lookups, or several clients) can use both cores. This measures what
that buys, side by side in one run: the keyword searches of real questions (the
heaviest read a request makes) against the benchmark's 100k-chunk store, ``--clients``
at a time, with 1 and with 2 readers, alternated over ``--rounds``. With two readers
idle, one search is split by chunk seq across both (see ``SqliteGraphStore``), so one
at a time also reports each search's latency: what the split buys a lone client.

    python -m tests.benchmarks.sqlite_readers [--size 100000] [--queries 300] [--clients 1 2 4]
        [--rounds 3]

The store is the one ``query_latency`` builds (``python -m tests.benchmarks.query_latency
--prepare-only`` builds it alone).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.domain.models import ChunkFilter
from tests.benchmarks import chunk_stores
from tests.benchmarks.common import write_section
from tests.benchmarks.latency_client import stats
from tests.benchmarks.query_latency import load_average, questions, revision

K = 50  # HYBRID's keyword depth


async def timed_run(
    store: SqliteGraphStore, queries: Sequence[str], clients: int
) -> tuple[float, list[float]]:
    """Seconds to run every query's keyword search, ``clients`` at a time, and each
    search's milliseconds."""
    pending = list(queries)
    latencies: list[float] = []

    async def client() -> None:
        while pending:
            query = pending.pop()
            started = time.perf_counter()
            await store.keyword_search(query, K, ChunkFilter())
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


Key = tuple[int, int]  # (readers, clients)


async def measure(
    path: str, queries: Sequence[str], clients: Sequence[int], rounds: int
) -> tuple[dict[Key, list[float]], dict[Key, list[float]]]:
    """Searches per second by (readers, clients), one figure per round; and every
    search's milliseconds by (readers, clients), all rounds together."""
    rates: dict[Key, list[float]] = {}
    latencies: dict[Key, list[float]] = {}
    for _ in range(rounds):
        for n in clients:
            for readers in (1, 2):
                store = SqliteGraphStore(Path(path), readers=readers)
                await store.start()
                try:
                    await timed_run(store, queries[:50], n)  # warm the page cache
                    seconds, each = await timed_run(store, queries, n)
                finally:
                    await store.close()
                rates.setdefault((readers, n), []).append(len(queries) / seconds)
                latencies.setdefault((readers, n), []).extend(each)
    return rates, latencies


def report(
    rates: dict[Key, list[float]],
    latencies: dict[Key, list[float]],
    args: argparse.Namespace,
    queries: int,
    loads: tuple[str, str],
    when: str,
) -> str:
    lines = [
        f"Measured {when} ({revision()}) on {os.cpu_count()} cores shared with other work "
        f"(load average {loads[0]} at the start, {loads[1]} at the end). {queries} real "
        f"questions' keyword searches (k={K}, no filter) on the {args.size:,}-chunk store of "
        "`query_latency`, through `SqliteGraphStore.keyword_search`, the given number at a "
        f"time; 1 and 2 readers alternated, {args.rounds} rounds. Reproduce: "
        f"`python -m tests.benchmarks.sqlite_readers --size {args.size} --queries {queries} --clients "
        + " ".join(str(c) for c in args.clients)
        + f" --rounds {args.rounds}`.",
        "",
        "| searches at a time | 1 reader: searches/s | 2 readers: searches/s | 2 / 1 |",
        "|---|---|---|---|",
    ]
    for n in args.clients:
        one = statistics.median(rates[(1, n)])
        two = statistics.median(rates[(2, n)])
        lines.append(f"| {n} | {one:.0f} | {two:.0f} | **{two / one:.2f}x** |")
    lines += [
        "",
        "Medians of the rounds. One search at a time, two readers split a search that scores",
        "every match in two ranges run side by side (one that scores only candidates, as",
        "most searches for common words do, runs whole: `keyword_candidates`); more at a",
        "time, the readers serve searches side by side.",
    ]
    if 1 in args.clients:
        whole, split = stats(latencies[(1, 1)]), stats(latencies[(2, 1)])
        lines += [
            "",
            "One search at a time, each search's latency (ms, all rounds):",
            "",
            "| readers | p50 | p95 | p99 | max |",
            "|---|---|---|---|---|",
            f"| 1 (whole search) | {whole.p50:.2f} | {whole.p95:.2f} | {whole.p99:.2f} "
            f"| {whole.max:.2f} |",
            f"| 2 (split in two) | {split.p50:.2f} | {split.p95:.2f} | {split.p99:.2f} "
            f"| {split.max:.2f} |",
            "",
            f"2 / 1: p50 **{split.p50 / whole.p50:.2f}x**, p99 **{split.p99 / whole.p99:.2f}x**.",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--queries", type=int, default=300, help="questions per run")
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = chunk_stores.ready_store(args.size, print)
    queries = questions(args.queries)
    loads = (load_average(), "")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path = str(info.path / "graph.sqlite3")
    rates, latencies = asyncio.run(measure(path, queries, args.clients, args.rounds))
    body = report(rates, latencies, args, len(queries), (loads[0], load_average()), when)
    print(body)
    if not args.no_write:
        write_section("SQLite reads: one reader against two", body)


if __name__ == "__main__":
    main()
