"""Retrieval and answer quality on multi-hop and single-hop questions, as clients see it.

Why: the server's search and ask modes claim to find the paragraphs a question needs;
this measures it on closed corpora with gold answers, against a plain dense retriever,
so a change to chunking, fusion or the graph walk shows up as a number.

    python -m tests.eval.qa [--dataset multihop|singlehop|both] [--limit N]
        [--modes search:VECTOR ask:HYBRID ...] [--no-ask] [--k 2 5 10]
        [--out tests/eval/RESULTS.md | --no-write]

For each dataset, its closed corpus (``docs.jsonl``) goes into a fresh embedded store
(temporary directory: SQLite graph, Qdrant Edge vectors, in-process bus) through the
ingestion service, each document's ``source`` set to its dataset id. Every question is
then sent through the GraphQL schema in process (``search`` and ``ask``, one request
each, timed), and the hits (or ``Answer.context``) are reduced to distinct paragraphs in
order. The dense baseline runs outside the server: the same embedder over whole
paragraphs (text only, as the server embeds chunk text; the model reads the first 256
tokens of the few longer ones, which the server would chunk instead), brute-force cosine
in numpy. Scores: tests/eval/qa_metrics.py.

``--limit N`` takes N questions spread evenly over the file (so both HotpotQA and
MuSiQue appear) and ingests only their ``context_doc_ids`` (gold + distractors); a
dataset without them (single-hop) is ingested whole. The output says which.

Data: HotpotQA (Yang et al., EMNLP 2018), CC BY-SA 4.0; MuSiQue (Trivedi et al., TACL
2022), CC BY 4.0; XQuAD (Artetxe et al., ACL 2020), CC BY-SA 4.0; paragraphs from
Wikipedia, CC BY-SA. Read from ../shared/data/qa; nothing is cached in the repo.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from app.config import Settings, load_settings
from app.container import Container, build_container, make_embedder, make_extractor
from app.domain.models import DocumentInput
from app.observability.logging import configure_logging
from app.ports.models import Embedder, Extractor
from app.security.authenticate import LOCAL_PRINCIPAL
from app.server import services_of
from graphql_schema.context import Context, Services
from graphql_schema.schema import schema
from tests.benchmarks.common import SHARED, read_jsonl
from tests.eval import qa_metrics as m

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SHARED_QA = SHARED / "qa"
HEADING = "## Question answering: retrieval and answers"
DATASETS = {
    "multihop": ("multihop_dev", "Multi-hop dev (HotpotQA distractor + MuSiQue)"),
    "singlehop": ("singlehop_dev", "Single-hop dev (XQuAD English)"),
}
ATTRIBUTION = (
    "Data: HotpotQA (Yang et al., EMNLP 2018), CC BY-SA 4.0; MuSiQue (Trivedi et al., "
    "TACL 2022), CC BY 4.0; XQuAD (Artetxe et al., ACL 2020), CC BY-SA 4.0; paragraphs "
    "from Wikipedia, CC BY-SA."
)
SEARCH_MODES = ("search:VECTOR", "search:KEYWORD", "search:HYBRID")
ASK_MODES = ("ask:NAIVE", "ask:LOCAL", "ask:HYBRID")
BASELINE = "dense baseline"
ABORT_AFTER = 3  # a mode whose first questions all fail is not there yet: stop asking

SEARCH_QUERY = """
query QaSearch($query: String!, $k: Int!, $mode: SearchMode!) {
  search(query: $query, k: $k, mode: $mode) { score chunk { id } document { id source } }
}"""
ASK_QUERY = """
query QaAsk($question: String!, $k: Int!, $mode: AskMode!) {
  ask(question: $question, k: $k, mode: $mode) {
    answer model context { score chunk { id } document { id source } }
  }
}"""


# --- data ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    supporting: tuple[str, ...]
    group: str  # the breakdown row: "HotpotQA bridge", "MuSiQue 3-hop", ...
    context: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dataset:
    key: str
    title: str
    questions: list[Question]
    paragraphs: list[dict[str, Any]]
    corpus_note: str


def _group(row: dict[str, Any]) -> str:
    if row.get("dataset") == "musique":
        hops = re.match(r"(\d)hop", str(row.get("type", "")))
        return f"MuSiQue {hops.group(1)}-hop" if hops else f"MuSiQue {row.get('type')}"
    if row.get("dataset") == "hotpotqa":
        return f"HotpotQA {row.get('type')}"
    return str(row.get("type", "all"))


def spread(rows: Sequence[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """``limit`` rows evenly spaced over the file (the files are sorted by source)."""
    if limit is None or limit >= len(rows):
        return list(rows)
    return [rows[i * len(rows) // limit] for i in range(limit)]


def load_dataset(key: str, limit: int | None, data_root: Path = SHARED_QA) -> Dataset:
    folder, title = DATASETS[key]
    root = data_root / folder
    if not (root / "questions.jsonl").exists():
        raise SystemExit(f"{root} is missing: point --data at the shared data/qa folder")
    rows = spread(read_jsonl(root / "questions.jsonl"), limit)
    questions = [
        Question(
            id=r["id"],
            question=r["question"],
            answers=tuple(r["answers"]),
            supporting=tuple(r["supporting_doc_ids"]),
            group=_group(r),
            context=tuple(r.get("context_doc_ids") or ()),
        )
        for r in rows
    ]
    docs = read_jsonl(root / "docs.jsonl")
    note = f"the whole closed corpus ({len(docs):,} paragraphs)"
    if limit is not None and all(q.context for q in questions):
        wanted = {d for q in questions for d in (*q.context, *q.supporting)}
        docs = [d for d in docs if d["id"] in wanted]
        note = (
            f"--limit {limit}: only the {len(docs):,} context paragraphs (gold + "
            "distractors) of these questions, not the whole corpus"
        )
    return Dataset(key, title, questions, docs, note)


# --- the store -------------------------------------------------------------------------


def settings_for(data_dir: Path, workers: int | None) -> Settings:
    """Embedded backends in ``data_dir`` whatever the environment says; the answer
    generator (``KG_LLM_URL``) and model settings still come from the environment."""
    pipeline = {} if workers is None else {"pipeline": {"workers": workers}}
    return load_settings(
        data_dir=data_dir,
        graph_url="sqlite://",
        vector_url="edge://",
        bus_url="memory://",
        cache_url="memory://",
        jobs_url="sqlite://",
        **pipeline,
    )


async def ingest(container: Container, paragraphs: Sequence[dict[str, Any]]) -> float:
    """Submit every paragraph (``source`` = dataset id), wait for all jobs, print
    progress; the seconds it took. A FAILED job stops the run."""
    docs = [DocumentInput(title=p["title"], text=p["text"], source=p["id"]) for p in paragraphs]
    size = container.settings.limits.max_batch_documents
    pending: set[str] = set()
    done = 0
    started = time.perf_counter()

    async def submit() -> None:
        for start in range(0, len(docs), size):  # waits while the request queue is full
            jobs = await container.ingestion.submit(docs[start : start + size])
            pending.update(j.id for j in jobs)

    submitting = asyncio.create_task(submit())
    last_print = started
    while not (submitting.done() and not pending):
        await asyncio.sleep(0.5)
        if submitting.done() and submitting.exception() is not None:
            raise RuntimeError("submitting documents failed") from submitting.exception()
        for state in await container.ingestion.jobs(sorted(pending)):
            if state is None or not state.status.finished:
                continue
            if state.status.value != "COMPLETED":
                raise RuntimeError(f"ingestion job {state.id} failed: {state.error}")
            pending.discard(state.id)
            done += 1
        now = time.perf_counter()
        if now - last_print >= 15 or (submitting.done() and not pending):
            last_print = now
            rate = done / (now - started)
            eta = (len(docs) - done) / rate if rate else float("nan")
            print(
                f"  ingested {done:,}/{len(docs):,} ({rate:.1f} docs/s, ~{eta:.0f} s left)",
                flush=True,
            )
    return time.perf_counter() - started


# --- running the modes -----------------------------------------------------------------


@dataclass(slots=True)
class ModeRun:
    name: str
    rankings: dict[str, list[str]] = field(default_factory=dict)  # question -> paragraphs
    answers: dict[str, str] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    skipped: str | None = None  # why the mode was not measured
    model: str | None = None

    @property
    def asks(self) -> bool:
        return self.name.startswith("ask:")


def _paragraphs(hits: Sequence[dict[str, Any]], by_doc: dict[str, str]) -> list[str]:
    return m.distinct(
        h["document"].get("source") or by_doc.get(h["document"]["id"], h["document"]["id"])
        for h in hits
    )


def _error_text(errors: Sequence[Any]) -> str:
    first = errors[0]
    code = (getattr(first, "extensions", None) or {}).get("code", "no code")
    return f"{code}: {getattr(first, 'message', first)}"


async def run_mode(
    name: str, questions: Sequence[Question], services: Services, depth: int
) -> ModeRun:
    """Every question through the schema, one request each, as a client sends it."""
    run = ModeRun(name)
    kind, mode = name.split(":")
    document = ASK_QUERY if kind == "ask" else SEARCH_QUERY
    by_doc: dict[str, str] = {}
    for i, q in enumerate(questions):
        text_var = "question" if kind == "ask" else "query"
        variables = {text_var: q.question, "k": depth, "mode": mode}
        context = Context(services=services, request_id=f"qa-{name}-{i}", principal=LOCAL_PRINCIPAL)
        start = time.perf_counter()
        result = await schema.execute(document, variable_values=variables, context_value=context)
        elapsed = (time.perf_counter() - start) * 1000
        if result.errors or result.data is None:
            run.errors += 1
            run.first_error = run.first_error or _error_text(result.errors or ["no data"])
            if run.errors == i + 1 and run.errors >= ABORT_AFTER:  # never answered yet
                run.skipped = f"the first {ABORT_AFTER} requests failed ({run.first_error})"
                return run
            continue
        run.latencies_ms.append(elapsed)
        if kind == "ask":
            answer = result.data["ask"]
            run.answers[q.id] = answer["answer"]
            run.model = answer["model"]
            run.rankings[q.id] = _paragraphs(answer["context"], by_doc)
        else:
            run.rankings[q.id] = _paragraphs(result.data["search"], by_doc)
        if (i + 1) % 50 == 0:
            print(f"  {name}: {i + 1}/{len(questions)}", flush=True)
    return run


def dense_baseline(
    embedder: Embedder,
    paragraphs: Sequence[dict[str, Any]],
    questions: Sequence[Question],
    depth: int,
    saved: Path | None = None,
) -> tuple[ModeRun, float]:
    """Brute-force cosine of each question against whole paragraphs (text only, as the
    server embeds chunk text), same embedder; also the seconds to embed the corpus.
    With ``saved`` (a kept store's folder), the paragraph vectors are kept there too."""
    start = time.perf_counter()
    if saved is not None and saved.exists():
        matrix = np.load(saved)
    else:
        vectors: list[list[float]] = []
        for at in range(0, len(paragraphs), 500):
            vectors += embedder.embed([p["text"] for p in paragraphs[at : at + 500]])
            print(f"  dense baseline: embedded {len(vectors):,}/{len(paragraphs):,}", flush=True)
        matrix = np.asarray(vectors, dtype=np.float32)
        if saved is not None:
            np.save(saved, matrix)
    corpus_seconds = time.perf_counter() - start
    ids = [p["id"] for p in paragraphs]
    run = ModeRun(BASELINE)
    for q in questions:
        t0 = time.perf_counter()
        vector = np.asarray(embedder.embed([q.question])[0], dtype=np.float32)
        scores = matrix @ vector  # unit vectors: the dot product is the cosine
        top = np.argsort(-scores, kind="stable")[:depth]
        run.latencies_ms.append((time.perf_counter() - t0) * 1000)
        run.rankings[q.id] = [ids[int(j)] for j in top]
    return run, corpus_seconds


# --- scores and the report -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scores:
    recall: dict[int, float]
    mrr: float
    em: float | None
    f1: float | None
    p50_ms: float
    p95_ms: float


def score(run: ModeRun, questions: Sequence[Question], cutoffs: Sequence[int]) -> Scores:
    """Over every question: one the mode failed on counts as found nothing."""
    recall = {
        k: m.mean([m.recall_at_k(run.rankings.get(q.id, []), q.supporting, k) for q in questions])
        for k in cutoffs
    }
    mrr = m.mean([m.reciprocal_rank(run.rankings.get(q.id, []), q.supporting) for q in questions])
    em = f1 = None
    if run.asks:
        em = m.mean([m.exact_match(run.answers.get(q.id, ""), q.answers) for q in questions])
        f1 = m.mean([m.token_f1(run.answers.get(q.id, ""), q.answers) for q in questions])
    lat = run.latencies_ms or [float("nan")]
    return Scores(recall, mrr, em, f1, m.percentile(lat, 50), m.percentile(lat, 95))


@dataclass(slots=True)
class DatasetResult:
    data: Dataset
    runs: list[ModeRun]
    cutoffs: list[int]
    depth: int
    stats: str
    ingest_seconds: float
    baseline_seconds: float
    query_seconds: float

    def scores(self, name: str, questions: Sequence[Question] | None = None) -> Scores | None:
        run = next((r for r in self.runs if r.name == name), None)
        if run is None or run.skipped:
            return None
        return score(run, self.data.questions if questions is None else questions, self.cutoffs)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def targets(result: DatasetResult) -> list[str]:
    """The PASS/MISS lines this dataset is held to."""

    def r5(name: str) -> float | None:
        s = result.scores(name)
        return None if s is None else s.recall.get(5)

    def line(label: str, value: float | None, goal: float | None, detail: str) -> str:
        if value is None or goal is None:
            return f"- NOT RUN: {label} ({detail})"
        return f"- {'PASS' if value >= goal else 'MISS'}: {label}: {detail}"

    base, naive, local, hybrid = (r5(n) for n in (BASELINE, "ask:NAIVE", "ask:LOCAL", "ask:HYBRID"))
    if result.data.key == "multihop":
        goal = None if base is None else base + 0.10
        return [
            line(
                "ask HYBRID recall@5 >= dense baseline + 10 points",
                hybrid,
                goal,
                f"{_fmt(hybrid)} against {_fmt(goal)}",
            ),
            line(
                "ask LOCAL recall@5 above ask NAIVE",
                local,
                None if naive is None else naive + 1e-9,
                f"{_fmt(local)} against {_fmt(naive)}",
            ),
        ]
    search = r5("search:HYBRID")
    return [
        line(
            "ask HYBRID recall@5 >= 0.95",
            hybrid,
            0.95,
            f"{_fmt(hybrid)} (search HYBRID: {_fmt(search)})",
        )
    ]


def render(result: DatasetResult, command: str) -> str:
    d = result.data
    cut = result.cutoffs
    base = result.scores(BASELINE)
    head = " | ".join(f"R@{k}" for k in cut)
    gains = " / ".join(f"R@{k}" for k in cut)
    lines = [
        f"### {d.title}",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {_machine()}. "
        f"{len(d.questions)} questions; corpus: {d.corpus_note}; stored {result.stats}. "
        f"Ingestion {result.ingest_seconds:.0f} s, baseline corpus embedding "
        f"{result.baseline_seconds:.0f} s, queries {result.query_seconds:.0f} s. "
        f"Reproduce: `{command}`.",
        "",
        f"Every mode asks for k={result.depth} (search: {result.depth} hits; ask: "
        f"{result.depth} context passages), reduced to distinct paragraphs in order. R@k: "
        "share of questions with ALL supporting paragraphs in the top k; MRR of the first "
        "supporting paragraph; EM / F1 after SQuAD normalisation (ask only); latency per "
        "request through the GraphQL schema in process (baseline: embed + numpy). Dense "
        "baseline: same embedder, whole paragraphs, brute-force cosine, outside the server.",
        "",
        f"| mode | {head} | MRR | EM | F1 | p50 ms | p95 ms | gain over baseline, points "
        f"({gains}, MRR) | errors |",
        "|---|" + "---:|" * (len(cut) + 6) + "---|",
    ]
    for run in result.runs:
        s = result.scores(run.name)
        if s is None:
            lines.append(f"| {run.name} | not measured: {run.skipped} |")
            continue
        gain = "–"
        if base is not None and run.name != BASELINE:
            parts = [(s.recall[k] - base.recall[k]) * 100 for k in cut]
            parts.append((s.mrr - base.mrr) * 100)
            gain = " / ".join(f"{p:+.1f}" for p in parts)
        recalls = " | ".join(_fmt(s.recall[k]) for k in cut)
        errors = str(run.errors) + (f" ({run.first_error})" if run.first_error else "")
        model = f" ({run.model})" if run.model else ""
        lines.append(
            f"| {run.name}{model} | {recalls} | {_fmt(s.mrr)} | {_fmt(s.em)} | {_fmt(s.f1)} "
            f"| {s.p50_ms:.1f} | {s.p95_ms:.1f} | {gain} | {errors} |"
        )
    groups = sorted({q.group for q in d.questions})
    if len(groups) > 1 and 5 in cut:
        measured = [r for r in result.runs if not r.skipped]
        lines += [
            "",
            "Recall@5 by question type (where modes fail):",
            "",
            "| type | n | " + " | ".join(r.name for r in measured) + " |",
            "|---|---:|" + "---:|" * len(measured),
        ]
        for g in groups:
            qs = [q for q in d.questions if q.group == g]
            cells = []
            for r in measured:
                s = result.scores(r.name, qs)
                cells.append(_fmt(None if s is None else s.recall[5]))
            lines.append(f"| {g} | {len(qs)} | " + " | ".join(cells) + " |")
    lines += ["", "Targets:", "", *targets(result), "", ATTRIBUTION]
    return "\n".join(lines) + "\n"


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()}, {os.cpu_count()} cores (load {load:.1f} at the start), "
        f"Python {platform.python_version()}"
    )


def write_block(path: Path, key: str, block: str) -> None:
    """Replace this dataset's block between its markers in RESULTS.md, or add it at the
    end of the QA section (made if missing); every other section stays as it is."""
    start, end = f"<!-- qa-eval:{key}:start -->", f"<!-- qa-eval:{key}:end -->"
    marked = f"{start}\n{block.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Evaluation results\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: marked, text, count=1)
    else:
        if HEADING not in text:
            text = text.rstrip("\n") + f"\n\n{HEADING}\n"
        at = text.index(HEADING) + len(HEADING)
        following = re.compile(r"^## ", re.M).search(text, at)
        cut = following.start() if following else len(text)
        text = text[:cut].rstrip("\n") + f"\n\n{marked}\n\n" + text[cut:].lstrip("\n")
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


# --- main ------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def opened(
    settings: Settings, models: tuple[Extractor, Embedder], *, workers: bool
) -> AsyncIterator[Container]:
    """A container on ``settings`` with the shared models, started and ready."""
    extractor, embedder = models
    container = build_container(settings, extractor=extractor, embedder=embedder)
    await container.start(workers=workers)
    try:
        await container.wait_ready()
        yield container
    finally:
        await container.close()


async def evaluate(
    data: Dataset,
    modes: Sequence[str],
    cutoffs: list[int],
    models: tuple[Extractor, Embedder],
    workers: int | None,
    store: Path | None = None,
) -> DatasetResult:
    """Ingest into a fresh store, then run each mode on the store opened anew, so no
    mode finds the query embeddings (or results) another mode left in the caches.
    With ``store`` (a folder), a store already there is reused instead (development)."""
    depth = max(cutoffs)
    with tempfile.TemporaryDirectory(prefix=f"qa-{data.key}-") as tmp:
        root = Path(tmp) if store is None else store / data.key
        reuse = (root / "graph.sqlite3").exists()
        settings = settings_for(root, workers)
        async with opened(settings, models, workers=True) as container:
            ingest_seconds = 0.0
            if reuse:
                print(f"{data.title}: reusing the store in {root}", flush=True)
            else:
                print(f"{data.title}: ingesting {data.corpus_note}", flush=True)
                ingest_seconds = await ingest(container, data.paragraphs)
            st = await container.catalog.stats()
        stats = (
            f"{st.documents:,} documents, {st.chunks:,} chunks, {st.entities:,} entities, "
            f"{st.relations:,} relations"
        )
        print(f"  stored {stats} in {ingest_seconds:.0f} s", flush=True)
        baseline, baseline_seconds = await asyncio.to_thread(
            dense_baseline,
            models[1],
            data.paragraphs,
            data.questions,
            depth,
            None if store is None else root / "baseline.npy",
        )
        runs = [baseline]
        started = time.perf_counter()
        for name in modes:
            async with opened(settings, models, workers=False) as container:
                run = await run_mode(name, data.questions, services_of(container), depth)
            if run.skipped:
                print(f"  {name}: NOT MEASURED: {run.skipped}", flush=True)
            elif run.errors:
                print(f"  {name}: {run.errors} errors, first: {run.first_error}", flush=True)
            runs.append(run)
        query_seconds = time.perf_counter() - started
    return DatasetResult(
        data, runs, cutoffs, depth, stats, ingest_seconds, baseline_seconds, query_seconds
    )


def parse_modes(raw: Sequence[str] | None, no_ask: bool) -> list[str]:
    """``search:VECTOR``-style names (any case), or the groups search / ask / all."""
    everything = [*SEARCH_MODES, *ASK_MODES]
    groups = {"all": everything, "search": list(SEARCH_MODES), "ask": list(ASK_MODES)}
    chosen: list[str] = []
    for item in raw or ["all"]:
        kind, _, mode = item.partition(":")
        expanded = groups.get(item.lower()) or [f"{kind.lower()}:{mode.upper()}"]
        for name in expanded:
            if name not in everything:
                raise SystemExit(f"unknown mode {item!r}: use {', '.join(everything)} or a group")
            if name not in chosen:
                chosen.append(name)
    return [c for c in chosen if not (no_ask and c.startswith("ask:"))]


def main(argv: Sequence[str] | None = None) -> list[DatasetResult]:
    parser = argparse.ArgumentParser(
        prog="python -m tests.eval.qa",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", choices=["multihop", "singlehop", "both"], default="both")
    parser.add_argument("--limit", type=int, help="N questions (and their context docs)")
    parser.add_argument(
        "--modes", nargs="+", help="search:VECTOR ... ask:HYBRID, or search / ask / all"
    )
    parser.add_argument("--no-ask", action="store_true", help="skip the ask modes")
    parser.add_argument("--k", type=int, nargs="+", default=[2, 5, 10], help="recall cutoffs")
    parser.add_argument("--workers", type=int, help="in-process ingestion slots")
    parser.add_argument("--data", type=Path, default=SHARED_QA, help="the qa data folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="print, do not write")
    parser.add_argument(
        "--store", type=Path, help="keep (and reuse) the ingested stores here (development)"
    )
    parser.add_argument("--log-level", default="WARNING", help="the server's log level")
    args = parser.parse_args(argv)
    configure_logging(args.log_level, json=False)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    if min(args.k) < 1 or max(args.k) > 100:
        parser.error("--k cutoffs must be within 1..100")
    cutoffs = sorted(set(args.k))
    modes = parse_modes(args.modes, args.no_ask)
    keys = ["multihop", "singlehop"] if args.dataset == "both" else [args.dataset]
    command = "python -m tests.eval.qa " + " ".join(sys.argv[1:] if argv is None else argv)

    datasets = [load_dataset(key, args.limit, args.data) for key in keys]
    started = time.perf_counter()
    defaults = settings_for(Path(tempfile.gettempdir()), args.workers)
    extractor, embedder = make_extractor(defaults), make_embedder(defaults)
    extractor.load()
    embedder.load()
    results = []
    for data in datasets:
        result = asyncio.run(
            evaluate(data, modes, cutoffs, (extractor, embedder), args.workers, args.store)
        )
        block = render(result, command.strip())
        print("\n" + block, flush=True)
        if not args.no_write:
            write_block(args.out, data.key, block)
            print(f"written to {args.out}", flush=True)
        results.append(result)
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    return results


if __name__ == "__main__":
    main()
