"""Keyword search on SQLite: what the candidate budget (``keyword_candidates``) costs and
saves, against scoring every chunk that holds a word.

On the 100,000-chunk store of ``query_latency``, one store per budget on the same file
(two readers each, the default), every question searched by each in turn (which goes
first rotates), one search at a time:

- latency of ``keyword_search`` at k=10 (KEYWORD's default) and k=50 (HYBRID's depth);
- agreement with the unpruned search: the share of questions with the same top 10
  (chunks and order), and the mean share of the unpruned top 50 found;
- quality: for the QA questions whose supporting paragraphs are all in the store, the
  mean share of them among the documents of the top 5, 10 and 50 chunks.

Reproduce: ``python -m tests.benchmarks.keyword_budget --queries 300``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.adapters.keyword_candidates import KEYWORD_CANDIDATE_POSTINGS
from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.domain.ids import document_id
from app.domain.models import ChunkFilter
from app.pipeline.normalise import normalise, normalise_title
from tests.benchmarks import chunk_stores
from tests.benchmarks.common import top_k_agreement, write_section
from tests.benchmarks.latency_client import Stats, stats
from tests.benchmarks.query_latency import load_average, questions, revision
from tests.eval.qa import DATASETS, load_dataset


@dataclass
class BudgetResult:
    k10: Stats
    k50: Stats
    same: float  # share of questions with the unpruned top 10, in order
    overlap: float  # mean share of the unpruned top 50 found
    recall: dict[tuple[str, int], float]  # (QA set, depth) -> supporting paragraphs found


DEPTHS = (5, 10, 50)


def supported_questions(present: set[str]) -> dict[str, list[tuple[str, set[str]]]]:
    """Per QA set (``tests.eval.qa``), (question, supporting document ids) for the
    questions whose supporting paragraphs are all in the store."""
    out: dict[str, list[tuple[str, set[str]]]] = {}
    for key in DATASETS:
        data = load_dataset(key, None)
        ids = {
            p["id"]: document_id(normalise_title(p["title"]), normalise(p["text"]))
            for p in data.paragraphs
        }
        for q in data.questions:
            support = {ids[d] for d in q.supporting}
            if support <= present:
                out.setdefault(key, []).append((q.question, support))
    return out


async def measure(
    path: Path, budgets: Sequence[int | None], queries: Sequence[str]
) -> tuple[dict[int | None, BudgetResult], int]:
    """Each budget's result (``None``: unpruned, the last one), and how many questions
    the quality columns cover."""
    stores = {b: SqliteGraphStore(path, keyword_postings=b) for b in budgets}
    for store in stores.values():
        await store.start()
    none = ChunkFilter()
    try:
        with closing(sqlite3.connect(path)) as db:
            present = {row[0] for row in db.execute("SELECT id FROM documents")}
        supported = supported_questions(present)
        for q in queries[:30]:  # warm the page caches
            for store in stores.values():
                await store.keyword_search(q, 50, none)
        times: dict[tuple[int | None, int], list[float]] = {}
        tops: dict[tuple[int | None, int], list[list[str]]] = {}
        for i, q in enumerate(queries):
            order = list(budgets[i % len(budgets) :]) + list(budgets[: i % len(budgets)])
            for b in order:
                for k in (10, 50):
                    started = time.perf_counter()
                    hits = await stores[b].keyword_search(q, k, none)
                    times.setdefault((b, k), []).append((time.perf_counter() - started) * 1000)
                    tops.setdefault((b, k), []).append([h.chunk_id for h in hits])
        recall: dict[tuple[int | None, str, int], float] = {}
        for b, store in stores.items():
            for name, items in supported.items():
                shares: dict[int, list[float]] = {d: [] for d in DEPTHS}
                for question, support in items:
                    hits = await store.keyword_search(question, max(DEPTHS), none)
                    for d in DEPTHS:
                        found = {h.document_id for h in hits[:d]}
                        shares[d].append(len(found & support) / len(support))
                for d in DEPTHS:
                    recall[(b, name, d)] = statistics.fmean(shares[d])
    finally:
        for store in stores.values():
            await store.close()
    out: dict[int | None, BudgetResult] = {}
    for b in budgets:
        same, _ = top_k_agreement(list(zip(tops[(b, 10)], tops[(None, 10)], strict=True)))
        _, overlap = top_k_agreement(list(zip(tops[(b, 50)], tops[(None, 50)], strict=True)))
        out[b] = BudgetResult(
            k10=stats(times[(b, 10)]),
            k50=stats(times[(b, 50)]),
            same=same,
            overlap=overlap,
            recall={(n, d): v for (c, n, d), v in recall.items() if c == b},
        )
    return out, sum(len(v) for v in supported.values())


def report(
    results: dict[int | None, BudgetResult],
    supported: int,
    args: argparse.Namespace,
    loads: tuple[str, str],
    when: str,
) -> str:
    names = ("singlehop", "multihop")
    lines = [
        f"Measured {when} ({revision()}) on 2 cores shared with other work (load average "
        f"{loads[0]} at the start, {loads[1]} at the end). {args.queries} real questions' "
        f"keyword searches on the {args.size:,}-chunk store of `query_latency`, through "
        "`SqliteGraphStore.keyword_search` (two readers), one at a time, each budget in "
        "turn on the same file; quality on the "
        f"{supported} QA questions whose supporting paragraphs are all in the store. "
        f"The default budget is {KEYWORD_CANDIDATE_POSTINGS:,} postings. Reproduce: "
        f"`python -m tests.benchmarks.keyword_budget --queries {args.queries}`.",
        "",
        "| budget (postings) | k=10 p50 / p99 ms | k=50 p50 / p99 ms | same top 10 as unpruned | "
        "unpruned top 50 found | "
        + " | ".join(f"{n} support@{d}" for n in names for d in DEPTHS)
        + " |",
        "|---" * (5 + len(names) * len(DEPTHS)) + "|",
    ]
    for b, r in results.items():
        k10, k50, recall = r.k10, r.k50, r.recall
        label = "unpruned" if b is None else f"{b:,}"
        lines.append(
            f"| {label} | {k10.p50:.2f} / {k10.p99:.2f} | {k50.p50:.2f} / {k50.p99:.2f} | "
            f"{r.same:.3f} | {r.overlap:.3f} | "
            + " | ".join(f"{recall[(n, d)]:.3f}" for n in names for d in DEPTHS)
            + " |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--budgets", type=int, nargs="+", default=[1_000, 2_000, 4_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    info = chunk_stores.ready_store(args.size, print)
    loads = load_average()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    budgets: list[int | None] = [*args.budgets, None]
    results, supported = asyncio.run(
        measure(info.path / "graph.sqlite3", budgets, questions(args.queries))
    )
    body = report(results, supported, args, (loads, load_average()), when)
    print(body)
    if not args.no_write:
        write_section("Keyword search: the candidate budget", body)


if __name__ == "__main__":
    main()
