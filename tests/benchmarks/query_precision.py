"""Query embedding from fp32 or int8 weights: retrieval quality and time per query.

    python -m tests.benchmarks.query_precision [--queries 400]

Why: one query's embedding is most of a search's latency, and ONNX Runtime's int8
(dynamically quantized, per-channel) weights cut it; but the stored chunk vectors stay
fp32 (ingestion embeds them in torch batches), so a query vector moved by quantization
may rank them differently. This measures both sides.

- Quality: dense retrieval, brute force, on the dev QA sets: single-hop (all its
  questions and paragraphs) and multi-hop (all its questions, over their closed corpus).
  Paragraphs are embedded once by the embedder's torch batch path, as ingestion stores
  them (kept by ``chunk_stores.VectorCache`` under ``~/.cache/kg-bench/embeddings``, by
  model and text); each question is embedded alone, as the server embeds a query, by the
  fp32 and by the int8 ONNX encoder. recall@k counts a question when all its supporting
  paragraphs are in the top k; MRR is of the first supporting paragraph (both with
  ``tests.eval.qa_metrics``, as the eval harness scores them). Also the cosine between
  the two vectors of each question.
- Speed: two embedders loaded side by side (fp32 and int8 queries, one ONNX Runtime
  thread each) embed the same real questions one at a time, in alternation (the order
  swapped at every question), so both see the same moments of a shared machine.

Decision rule, fixed before measuring: int8 becomes the default only if it is faster at
p50 AND, on both sets, its recall@5 and recall@10 are each at most one question below
fp32's (1/200 = 0.005 with 200 questions per set).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from app.adapters.sentence_transformer_embedder import QueryPrecision, SentenceTransformerEmbedder
from app.config import load_settings
from tests.benchmarks import chunk_stores
from tests.benchmarks.common import alternate, write_section
from tests.benchmarks.latency_client import Stats, stats
from tests.benchmarks.precision import qa_set
from tests.benchmarks.query_latency import load_average, questions, revision
from tests.eval.qa_metrics import recall_at_k, reciprocal_rank

PRECISIONS: tuple[QueryPrecision, ...] = ("fp32", "int8")
KS = (2, 5, 10)
GATED_KS = (5, 10)
ALLOWED_LOSS = 1  # questions of recall@5 / recall@10 int8 may lose on each set
WARMUP = 20


@dataclass(frozen=True)
class Retrieval:
    questions: int
    hits: dict[int, int]  # k -> questions with every supporting paragraph in the top k
    mrr: float

    def recall(self, k: int) -> float:
        return self.hits[k] / self.questions


def query_vectors(embedder: SentenceTransformerEmbedder, texts: Sequence[str]) -> np.ndarray:
    """One text at a time, as the server embeds a query (the ONNX path)."""
    return np.array([embedder.embed([t])[0] for t in texts], dtype=np.float32)


def retrieval(
    q_vecs: np.ndarray,
    doc_vecs: np.ndarray,
    qs: Sequence[dict[str, Any]],
    ids: Sequence[str],
) -> Retrieval:
    """Brute-force rankings of the paragraphs, scored as the eval harness scores them."""
    ranks = np.argsort(-(q_vecs @ doc_vecs.T), axis=1, kind="stable")
    hits = dict.fromkeys(KS, 0)
    mrr = 0.0
    for q, row in zip(qs, ranks, strict=True):
        ranking = [ids[i] for i in row]
        for k in KS:
            hits[k] += int(recall_at_k(ranking, q["supporting_doc_ids"], k))
        mrr += reciprocal_rank(ranking, q["supporting_doc_ids"])
    return Retrieval(len(qs), hits, mrr / len(qs))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dots: np.ndarray = np.sum(a * b, axis=1) / (
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    )
    return dots


def cpu_flags() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    vnni = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    simd = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "no avx2"
    return f"{simd}, " + (f"int8 dot products: {', '.join(vnni)}" if vnni else "no VNNI")


def decide(
    quality: dict[str, dict[str, Retrieval]], speed: dict[str, Stats]
) -> tuple[bool, list[str]]:
    """The decision rule of the module docstring, with its reasons."""
    faster = speed["int8"].p50 < speed["fp32"].p50
    reasons = [
        f"int8 is {'faster' if faster else 'not faster'} at p50 "
        f"({speed['int8'].p50:.2f} vs {speed['fp32'].p50:.2f} ms)"
    ]
    within = True
    for name, by_precision in quality.items():
        for k in GATED_KS:
            lost = by_precision["fp32"].hits[k] - by_precision["int8"].hits[k]
            ok = lost <= ALLOWED_LOSS
            within &= ok
            change = (
                "no change" if lost == 0 else f"{-lost:+d} question{'s' if abs(lost) != 1 else ''}"
            )
            verdict = "allowed" if ok else "more than one lost"
            reasons.append(f"{name} recall@{k}: {change} ({verdict})")
    return faster and within, reasons


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--queries", type=int, default=400, help="questions timed, at most 400")
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f}s] {message}", flush=True)

    p = load_settings().pipeline
    embedders = {
        precision: SentenceTransformerEmbedder(
            model=p.embedding_model,
            batch_size=p.embedding_batch_size,
            threads=p.torch_threads,
            query_threads=1,
            query_precision=precision,
        )
        for precision in PRECISIONS
    }
    for precision, embedder in embedders.items():
        embedder.load()
        if embedder.query_backend != "onnx":
            raise SystemExit(f"{precision} queries are not on ONNX Runtime here: see the log")
    log("embedders loaded")

    sets = {
        "single-hop": qa_set("singlehop_dev", None),
        "multi-hop": qa_set("multihop_dev", 200),
    }
    # As ingestion stores them (torch batches, fp32), cached by model and text.
    paragraph_vectors = chunk_stores.VectorCache(embedders["fp32"])
    described = {}
    quality: dict[str, dict[str, Retrieval]] = {}
    moved: list[np.ndarray] = []
    for name, (qs, docs) in sets.items():
        texts = [f"{d['title']}\n{d['text']}" for d in docs]
        doc_vecs = np.array(paragraph_vectors.vectors(texts, log), dtype=np.float32)
        log(f"{name}: {len(docs)} paragraphs embedded (or read from the cache)")
        ids = [d["id"] for d in docs]
        asked = [q["question"] for q in qs]
        q_vecs = {pr: query_vectors(embedders[pr], asked) for pr in PRECISIONS}
        quality[name] = {pr: retrieval(q_vecs[pr], doc_vecs, qs, ids) for pr in PRECISIONS}
        moved.append(cosines(q_vecs["fp32"], q_vecs["int8"]))
        described[name] = f"{len(qs)} q, {len(docs)} paragraphs"
        log(f"{name}: " + ", ".join(f"{pr} {quality[name][pr]}" for pr in PRECISIONS))
    cos = np.concatenate(moved)

    texts = questions(args.queries)
    ordered = [embedders[pr] for pr in PRECISIONS]
    alternate(ordered, texts[:WARMUP])
    loads = [load_average()]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    speed: dict[str, Stats] = dict(
        zip(PRECISIONS, (stats(t) for t in alternate(ordered, texts)), strict=True)
    )
    loads.append(load_average())
    log("timed")

    adopt, reasons = decide(quality, speed)
    lines = [
        f"Measured {when} ({revision()}) on {platform.machine()} ({cpu_flags()}), "
        f"{os.cpu_count()} cores shared with other work (load average {loads[0]} when the "
        f"timing started, {loads[1]} when it ended); {p.embedding_model}, onnxruntime "
        f"{metadata.version('onnxruntime')}. int8: `quantize_dynamic` of the fp32 export, "
        "QInt8 weights per channel, activations quantized on the fly. Reproduce: "
        f"`python -m tests.benchmarks.query_precision --queries {args.queries}`.",
        "",
        "**Decision rule** (fixed before measuring): int8 becomes the default only if it is "
        "faster at p50 and, on both sets, recall@5 and recall@10 each lose at most one "
        "question against fp32 (0.005 with 200 questions).",
        "",
        "### Retrieval with fp32 and int8 query vectors (stored vectors fp32, from torch)",
        "",
        "Dense retrieval, brute force; paragraphs embedded by the embedder's torch batches, "
        "questions one at a time by the ONNX encoder of each precision. Questions with "
        "every supporting paragraph in the top k in brackets.",
        "",
        "| set | query weights | recall@2 | recall@5 | recall@10 | MRR |",
        "|---|---|---|---|---|---|",
    ]
    for name, by_precision in quality.items():
        for pr in PRECISIONS:
            r = by_precision[pr]
            cells = " | ".join(f"{r.recall(k):.3f} ({r.hits[k]})" for k in KS)
            lines.append(f"| {name} ({described[name]}) | {pr} | {cells} | {r.mrr:.4f} |")
    lines += [
        "",
        f"Cosine between the int8 and the fp32 vector of the same question ({len(cos)} "
        f"questions): min {cos.min():.4f}, p5 {np.percentile(cos, 5):.4f}, "
        f"median {statistics.median(cos.tolist()):.4f}.",
        "",
        "### Time per query (ms), one ONNX Runtime thread each",
        "",
        f"{len(texts)} distinct real questions (`tests.benchmarks.query_latency.questions`), "
        f"each embedded by both encoders in turn (which goes first alternates), after "
        f"{WARMUP} warm-up questions; the embedder's whole `embed([q])` call.",
        "",
        "| query weights | p50 | p95 | p99 | mean |",
        "|---|---|---|---|---|",
    ]
    for pr in PRECISIONS:
        s = speed[pr]
        lines.append(f"| {pr} | {s.p50:.2f} | {s.p95:.2f} | {s.p99:.2f} | {s.mean:.2f} |")
    one, eight = speed["fp32"], speed["int8"]
    lines += [
        "",
        f"int8 / fp32: p50 **{eight.p50 / one.p50:.2f}**, p95 {eight.p95 / one.p95:.2f}, "
        f"p99 {eight.p99 / one.p99:.2f}, mean {eight.mean / one.mean:.2f}.",
        "",
        "**Verdict:** "
        + "; ".join(reasons)
        + ". "
        + (
            "int8 qualifies as the default query precision."
            if adopt
            else "fp32 stays the default query precision."
        ),
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("Query embedding: fp32 or int8", body)
        log("wrote the section of tests/benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
