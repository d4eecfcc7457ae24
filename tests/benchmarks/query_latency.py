"""Latency of ``search`` and ``ask`` through the running server, at 10k and 100k chunks.

For each store size (built by ``chunk_stores``: real paragraphs, real embeddings):

1. Raw cost, in this process, with the server stopped: one query embedding (the
   server's embedder settings: same model and threads) and one Qdrant Edge search
   on the same store, separately and summed per query; and the graph store's keyword
   search and chunk/document reads, the other layers a search passes through.
2. Through ``kg serve`` (embedded defaults, a subprocess on a free port), one client
   over HTTP keep-alive (the standard library's ``http.client``; the floor is also
   measured through httpx, to show what a heavier client adds), one request at a time. Every phase that claims a cache state
   gets a server started fresh for it, so nothing it measures was seen before:
   - cold: distinct questions (XQuAD and HotpotQA/MuSiQue) the server never saw;
   - embedding cached: the same questions again in another mode, after a mode that
     embedded them (VECTOR after HYBRID, HYBRID after VECTOR): the query embedding is
     cached, the search itself never ran with these arguments;
   - warm: the first ``WARM_SET`` questions of the cold phase repeated, so every cache
     the server has (query embeddings, and whole results if it caches them) can hit.
   Each server is warmed up first on other real text (paragraph titles). The server's
   own /metrics, read before and after each phase, say where its time went (backend
   calls per port and method, cache hits) and whether the cache state was as labelled.

Reproduce: ``python -m tests.benchmarks.query_latency --sizes 10000 100000 --queries 300``.
Embeddings and stores are cached under ~/.cache/kg-bench (see ``chunk_stores``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import random
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import qdrant_edge as qe

from app.adapters.qdrant_edge_vector_store import QdrantEdgeVectorStore
from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.config import load_settings
from app.container import make_embedder, make_extractor
from app.domain.models import ChunkFilter
from app.ports.models import Embedder
from tests.benchmarks import chunk_stores
from tests.benchmarks.common import REPO, SHARED, read_jsonl, top_k_agreement, write_section
from tests.benchmarks.latency_client import (
    ASK_MODES,
    HTTPX_FLOOR,
    Phase,
    ServerClient,
    Stats,
    embedded_env,
    stats,
)
from tests.support.live_server import live_server

WARM_SET = 50  # distinct questions a warm phase repeats
SEED = 20261130

# (first phase, then the phases that follow on the same server); see the docstring.
SEARCH_SESSIONS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("VECTOR", "cold"), ("HYBRID", "embedding cached"), ("VECTOR", "warm"), ("HYBRID", "warm")),
    (("HYBRID", "cold"), ("VECTOR", "embedding cached")),
    (("KEYWORD", "cold"), ("KEYWORD", "warm")),
)
TARGET_SIZE = 100_000
TARGET_P50_MS, TARGET_P99_MS, TARGET_CACHED_P50_MS = 15.0, 30.0, 5.0


def questions(limit: int) -> list[str]:
    """Distinct real questions, single- and multi-hop interleaved, in a seeded order."""
    found: list[str] = []
    for name in ("singlehop_dev", "multihop_dev"):
        found += [
            r["question"].strip() for r in read_jsonl(SHARED / "qa" / name / "questions.jsonl")
        ]
    unique = list(dict.fromkeys(q for q in found if q))
    random.Random(SEED).shuffle(unique)
    if len(unique) < limit:
        raise SystemExit(f"only {len(unique)} distinct questions, fewer than --queries {limit}")
    return unique[:limit]


def warmup_texts(corpus: chunk_stores.Corpus, n: int) -> list[str]:
    """Real text that is none of the questions: the titles of the last paragraphs."""
    titles = list(dict.fromkeys(p.title for p in reversed(corpus.paragraphs)))
    return titles[:n]


# --- raw cost in this process ---------------------------------------------------------


@dataclass
class Raw:
    embed: Stats
    vector_search: Stats
    embed_plus_search: Stats
    keyword_search: Stats
    hydrate: Stats  # chunks and documents of the hits, as the search resolver loads them
    recall: float = 1.0  # of the vector searches' top k, against exact search on the store
    # Keyword searches whose top k (chunks and order) is the unpruned search's, and the
    # mean share of the unpruned top k they hold (``app.adapters.keyword_candidates``).
    keyword_same: float = 1.0
    keyword_overlap: float = 1.0


async def measure_raw(
    path: Path, embedder: Embedder, queries: Sequence[str], warmup: Sequence[str], k: int
) -> Raw:
    vectors = QdrantEdgeVectorStore(path / "vectors")
    graph = SqliteGraphStore(path / "graph.sqlite3")
    await vectors.start(embedder.dimension)
    await graph.start()
    none = ChunkFilter()
    times: dict[str, list[float]] = {
        n: [] for n in ("embed", "search", "both", "keyword", "hydrate")
    }
    found: list[tuple[list[float], list[str]]] = []
    keyword_found: list[tuple[str, list[str]]] = []
    try:
        for measured, texts in ((False, warmup), (True, queries)):
            for q in texts:
                t0 = time.perf_counter()
                vector = embedder.embed([q])[0]
                t1 = time.perf_counter()
                hits = await vectors.search(vector, k, none)
                t2 = time.perf_counter()
                by_words = await graph.keyword_search(q, k, none)
                t3 = time.perf_counter()
                await graph.get_chunks([h.chunk_id for h in hits])
                await graph.get_documents(list(dict.fromkeys(h.document_id for h in hits)))
                t4 = time.perf_counter()
                if measured:
                    found.append((vector, [h.chunk_id for h in hits]))
                    keyword_found.append((q, [h.chunk_id for h in by_words]))
                    for name, ms in (
                        ("embed", t1 - t0),
                        ("search", t2 - t1),
                        ("both", t2 - t0),
                        ("keyword", t3 - t2),
                        ("hydrate", t4 - t3),
                    ):
                        times[name].append(ms * 1000)
    finally:
        await graph.close()
        await vectors.close()
    same, overlap = await keyword_agreement(graph.path, keyword_found, k)
    return Raw(
        embed=stats(times["embed"]),
        vector_search=stats(times["search"]),
        embed_plus_search=stats(times["both"]),
        keyword_search=stats(times["keyword"]),
        hydrate=stats(times["hydrate"]),
        recall=vector_recall(vectors.path, found, k),
        keyword_same=same,
        keyword_overlap=overlap,
    )


async def keyword_agreement(
    path: Path, found: Sequence[tuple[str, list[str]]], k: int
) -> tuple[float, float]:
    """How the (pruned) keyword searches compare with the same searches scoring every
    chunk that holds a word (``top_k_agreement``)."""
    unpruned = SqliteGraphStore(path, keyword_postings=None)
    await unpruned.start()
    try:
        pairs = [
            (hits, [h.chunk_id for h in await unpruned.keyword_search(q, k, ChunkFilter())])
            for q, hits in found
        ]
    finally:
        await unpruned.close()
    return top_k_agreement(pairs)


def vector_recall(path: Path, found: Sequence[tuple[list[float], list[str]]], k: int) -> float:
    """Mean share of each search's hits among the exact top ``k`` of the same store (the
    engine's exact search, on the closed store's files)."""
    shard = qe.EdgeShard.load(str(path))
    try:
        shares = []
        for vector, hits in found:
            exact = shard.query(
                qe.QueryRequest(
                    limit=k,
                    query=qe.Query.Nearest(vector),
                    with_payload=True,
                    params=qe.SearchParams(exact=True),
                )
            )
            expected = {str((p.payload or {})["chunk_id"]) for p in exact}
            shares.append(len(expected & set(hits)) / max(len(expected), 1))
    finally:
        shard.close()
    return statistics.fmean(shares) if shares else 1.0


# --- through the server ---------------------------------------------------------------


@dataclass
class SizeResult:
    size: int
    described: str
    store: chunk_stores.StoreInfo
    raw: Raw
    phases: list[Phase] = field(default_factory=list)
    ask_note: str = ""
    starts: list[float] = field(default_factory=list)  # seconds until /readyz, per server
    loads: list[str] = field(default_factory=list)  # load average at the start and the end


@contextmanager
def server(path: Path, result: SizeResult) -> Iterator[ServerClient]:
    started = time.perf_counter()
    with live_server(path, env=embedded_env(), timeout=600) as live:
        result.starts.append(time.perf_counter() - started)
        with ServerClient(live.base) as client:
            yield client


def run_session(
    client: ServerClient,
    operation: str,
    plan: Sequence[tuple[str, str]],
    cold: Sequence[str],
    warmup: Sequence[str],
    k: int,
) -> list[Phase]:
    # Warm up every operation the session measures, on other text.
    for mode in dict.fromkeys(mode for mode, _ in plan):
        for text in warmup:
            client.call(operation, text, mode, k)
    repeated = list(itertools.islice(itertools.cycle(cold[:WARM_SET]), len(cold)))
    return [
        client.phase(operation, mode, state, repeated if state == "warm" else cold, k)
        for mode, state in plan
    ]


def run_floor(client: ServerClient, n: int) -> list[Phase]:
    """The floor through the measuring client, then through httpx: what the client
    itself adds, side by side."""
    phases = []
    for mode in ("{ __typename }", HTTPX_FLOOR):
        for _ in range(20):
            client.call("floor", "", mode, 0)
        phases.append(client.phase("floor", mode, "baseline", [""] * n, 0))
    return phases


def measure_size(
    size: int,
    corpus: chunk_stores.Corpus,
    embedder: Embedder,
    args: argparse.Namespace,
    log: Callable[[str], None],
) -> SizeResult:
    info = chunk_stores.store(corpus, size, embedder.dimension, log)
    log(f"store of {size:,} chunks at {info.path} ({info.seconds:.0f} s to write)")
    cold = questions(args.queries)
    warmup = warmup_texts(corpus, args.warmup)
    raw = asyncio.run(measure_raw(info.path, embedder, cold, warmup, args.k))
    result = SizeResult(size, corpus.describe(size), info, raw, loads=[load_average()])
    for plan in SEARCH_SESSIONS:
        with server(info.path, result) as client:
            log(f"{size:,}: search session {plan[0][0]}")
            result.phases += run_session(client, "search", plan, cold, warmup, args.k)
            if plan is SEARCH_SESSIONS[0]:
                result.phases += run_floor(client, len(cold))
    ask_cold = cold[: args.ask_queries]
    for mode in ASK_MODES:
        with server(info.path, result) as client:
            reason = client.ask_unavailable()
            if reason:
                result.ask_note = reason
                break
            log(f"{size:,}: ask session {mode}")
            plan = ((mode, "cold"), (mode, "warm"))
            result.phases += run_session(client, "ask", plan, ask_cold, warmup[:5], args.ask_k)
    result.loads.append(load_average())
    return result


# --- the report -----------------------------------------------------------------------


PHASE_ORDER = {"baseline": 0, "cold": 1, "embedding cached": 2, "warm": 3}
OPERATION_ORDER = (
    {("search", m): i for i, m in enumerate(("VECTOR", "HYBRID", "KEYWORD"))}
    | {("ask", m): 3 + i for i, m in enumerate(ASK_MODES)}
    | {("floor", "{ __typename }"): -2, ("floor", HTTPX_FLOOR): -1}
)


def ordered(phases: Sequence[Phase]) -> list[Phase]:
    return sorted(
        phases, key=lambda p: (OPERATION_ORDER[(p.operation, p.mode)], PHASE_ORDER[p.state])
    )


def verdict(result: SizeResult, phase: Phase) -> str:
    """PASS/MISS against the issue's targets (single client, 100k chunks, search)."""
    if result.size != TARGET_SIZE or phase.operation != "search":
        return ""
    s = phase.client
    if phase.state == "cold":
        ok = s.p50 <= TARGET_P50_MS and s.p99 <= TARGET_P99_MS
        return f"{'PASS' if ok else 'MISS'} (p50 <= {TARGET_P50_MS:g}, p99 <= {TARGET_P99_MS:g})"
    if phase.state == "embedding cached":
        ok = s.p50 < TARGET_CACHED_P50_MS
        return f"{'PASS' if ok else 'MISS'} (p50 < {TARGET_CACHED_P50_MS:g})"
    return ""


def report(
    results: Sequence[SizeResult], args: argparse.Namespace, loads: tuple[str, str], when: str
) -> str:
    settings = load_settings()
    p = settings.pipeline
    lines = [
        f"Measured {when} ({revision()}) on {platform.machine()}, {os.cpu_count()} cores "
        "shared by the client, "
        f"the server and other work (load average {loads[0]} at the start, {loads[1]} at the end). "
        f"Server: `kg serve` on embedded defaults (SQLite graph, Qdrant Edge vectors, "
        f"in-process bus, memory cache, extractive answers), {p.embedding_model} fp32 on "
        f"{p.torch_threads} torch thread for batches, one query embedded by ONNX Runtime on "
        f"{p.query_threads} thread(s) from {p.query_precision} weights; quantized HNSW search "
        "(int8, rescored); one client, "
        "HTTP/1.1 keep-alive (`http.client`), one request at a "
        f"time, k={args.k} for search and k={args.ask_k} for ask; {args.queries} requests per "
        f"phase ({args.ask_queries} for ask), after {args.warmup} warm-up requests per mode. "
        "Reproduce: `python -m tests.benchmarks.query_latency --sizes "
        + " ".join(str(r.size) for r in results)
        + f" --queries {args.queries}`.",
        "",
        "**The stores.** "
        + chunk_stores.__doc__.split("\n\n", 1)[1]
        .split("\n\nEmbeddings")[0]
        .strip()
        .replace("``", "`")
        if chunk_stores.__doc__
        else "",
        "",
    ]
    for r in results:
        built = (
            f"written in {r.store.seconds:.0f} s" if r.store.seconds else "reused from the cache"
        )
        lines.append(
            f"- {r.size:,}: {r.described}; {r.store.entities:,} entities, "
            f"{r.store.relations:,} relations ({built}; servers ready in "
            f"{min(r.starts):.0f}-{max(r.starts):.0f} s; load average "
            f"{r.loads[0]} when its measurement started, {r.loads[-1]} when it ended)."
        )
    lines += [
        "",
        "**Phases.** Every phase runs on a server started for its session, warmed up on "
        "other text (paragraph titles). *cold*: distinct questions the server never saw, so "
        "nothing is cached (search: the query embedding is computed, the search runs; ask: "
        "retrieval and the extractive answer run). *embedding cached*: the same questions in "
        "a second mode right after a mode that embedded them (VECTOR after HYBRID, HYBRID "
        "after VECTOR): the query embedding comes from the cache, the search itself runs, "
        f"since it never ran with these arguments. *warm*: {WARM_SET} of the questions "
        "repeated: whole results (search hits, answers) come from the result cache keyed by "
        "the graph version. Questions: XQuAD and HotpotQA/MuSiQue "
        f"(`{SHARED.name}/qa/*/questions.jsonl`), single- and multi-hop mixed. *baseline*: "
        "`{ __typename }`, what any request costs through the same client, HTTP and GraphQL "
        "stack; measured again through httpx, a client with more work of its own per "
        "request, which adds that difference to every figure.",
        "",
        "### In this process: one query embedding and one vector search (ms)",
        "",
        "| chunks | embedding p50 / p99 | vector search p50 / p99 | both, per query p50 / p99 | keyword search p50 / p99 | read chunks + documents p50 / p99 | vector recall@k vs exact | keyword top k as unpruned: same / overlap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = [
            r.raw.embed,
            r.raw.vector_search,
            r.raw.embed_plus_search,
            r.raw.keyword_search,
            r.raw.hydrate,
        ]
        lines.append(
            f"| {r.size:,} | "
            + " | ".join(f"{s.p50:.2f} / {s.p99:.2f}" for s in cells)
            + f" | {r.raw.recall:.3f} | {r.raw.keyword_same:.3f} / {r.raw.keyword_overlap:.3f} |"
        )
    lines += [
        "",
        "### Through the server: client-side latency (ms)",
        "",
        "| chunks | operation | mode | phase | p50 | p95 | p99 | max | target (100k) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for ph in ordered(r.phases):
            s = ph.client
            lines.append(
                f"| {r.size:,} | {ph.operation} | {ph.mode} | {ph.state} | {s.p50:.1f} | "
                f"{s.p95:.1f} | {s.p99:.1f} | {s.max:.1f} | {verdict(r, ph)} |"
            )
    notes = sorted({r.ask_note for r in results if r.ask_note})
    if notes:
        lines += ["", "ask: " + "; ".join(notes)]
    lines += [
        "",
        "### Where the server's time went (means per request, ms, from its /metrics)",
        "",
        "`operation`: the GraphQL operation as the server timed it; the backend column is "
        "the time spent in each port method per request (calls per request in brackets; "
        "calls that run concurrently, HYBRID's two searches and ask's retrievals, can add "
        "up to more than the operation, and `rest` then goes negative); `rest` is the operation minus those: the query "
        "embedding, cache lookups, GraphQL execution, and for ask the question's entities "
        "(spaCy) and the extractive generator; `HTTP` is the client's mean minus the "
        "operation (uvicorn, Starlette, JSON, loopback). `cache`: lookups that hit / all, "
        "per namespace (`kg-search` holds both query embeddings and search results: a "
        "cold search makes two lookups, one per kind, and a warm one stops at the first).",
        "",
        "| chunks | operation | mode | phase | client mean | operation | backend calls | rest | HTTP | cache hits |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for ph in ordered(r.phases):
            sv = ph.server
            backend = ", ".join(
                f"{name} {ms:.2f} ({calls:g})" for name, (ms, calls) in sorted(sv.backend.items())
            )
            rest = sv.operation_ms - sum(ms for ms, _ in sv.backend.values())
            cache = (
                ", ".join(f"{n} {h}/{h + m}" for n, (h, m) in sorted(sv.cache.items())) or "none"
            )
            lines.append(
                f"| {r.size:,} | {ph.operation} | {ph.mode} | {ph.state} | {ph.client.mean:.2f} | "
                f"{sv.operation_ms:.2f} | {backend} | {rest:.2f} | "
                f"{ph.client.mean - sv.operation_ms:.2f} | {cache} |"
            )
    return "\n".join(lines)


def revision() -> str:
    """The commit measured, and whether the working tree differed from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=all", "--", "app", "graphql_schema")
    return f"commit {head}" + (
        " with uncommitted changes to app/ or graphql_schema/" if dirty else ""
    )


def load_average() -> str:
    """The one-minute load average."""
    return f"{os.getloadavg()[0]:.1f}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300, help="requests per phase")
    parser.add_argument("--ask-queries", type=int, default=None, help="per ask phase (--queries)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per mode")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ask-k", type=int, default=5)
    parser.add_argument(
        "--prepare-only", action="store_true", help="build the stores, measure nothing"
    )
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    args.ask_queries = args.ask_queries or args.queries
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = load_settings()
    embedder, extractor = make_embedder(settings), make_extractor(settings)
    corpus = chunk_stores.prepare(max(args.sizes), embedder, extractor, log)
    if args.prepare_only:
        for size in sorted(args.sizes):
            chunk_stores.store(corpus, size, embedder.dimension, log)
        log("stores ready")
        return
    embedder.load()
    loads = (load_average(), "")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results = [measure_size(size, corpus, embedder, args, log) for size in sorted(args.sizes)]
    body = report(results, args, (loads[0], load_average()), when)
    print(body)
    if not args.no_write:
        write_section("Query latency: search and ask through the server", body)
        log("wrote the section of tests/benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
