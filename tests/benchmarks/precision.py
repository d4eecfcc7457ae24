"""fp32 or bf16 for the embedder: speed on this CPU and retrieval quality, side by side.

    python -m tests.benchmarks.precision [--multihop-questions 60]

Quality is dense retrieval on the dev QA sets (same embedder, brute force over the
closed corpus of the questions used): recall@k counts a question when all its
supporting paragraphs are in the top k; MRR of the first supporting paragraph.
bf16 is adopted as the default only if it is faster and recall@5 stays within half a
point of fp32 on both sets.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from app.adapters.sentence_transformer_embedder import SentenceTransformerEmbedder
from tests.benchmarks.common import SHARED, read_jsonl, write_section
from tests.eval.qa_metrics import mean, recall_at_k, reciprocal_rank


def qa_set(name: str, questions: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    folder = SHARED / "qa" / name
    qs = read_jsonl(folder / "questions.jsonl")[:questions]
    docs = read_jsonl(folder / "docs.jsonl")
    if questions is not None:  # the closed corpus of these questions only
        keep = {d for q in qs for d in q.get("context_doc_ids", q["supporting_doc_ids"])}
        docs = [d for d in docs if d["id"] in keep]
    return qs, docs


def retrieval(
    em: SentenceTransformerEmbedder, qs: list[dict[str, Any]], docs: list[dict[str, Any]]
) -> dict[str, float]:
    t0 = time.perf_counter()
    doc_vecs = np.array(em.embed([f"{d['title']}\n{d['text']}" for d in docs]), dtype=np.float32)
    seconds = time.perf_counter() - t0
    q_vecs = np.array(em.embed([q["question"] for q in qs]), dtype=np.float32)
    ids = [d["id"] for d in docs]
    ranks = np.argsort(-(q_vecs @ doc_vecs.T), axis=1)
    rankings = [[ids[i] for i in row] for row in ranks]
    out: dict[str, float] = {"docs_per_s": len(docs) / seconds}
    for k in (2, 5, 10):
        out[f"recall@{k}"] = mean(
            [recall_at_k(r, q["supporting_doc_ids"], k) for q, r in zip(qs, rankings, strict=True)]
        )
    mrr = sum(
        reciprocal_rank(r, q["supporting_doc_ids"]) for q, r in zip(qs, rankings, strict=True)
    )
    out["mrr"] = mrr / len(qs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--multihop-questions", type=int, default=60)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    sets = {
        "single-hop (XQuAD, 200 q)": qa_set("singlehop_dev", None),
        f"multi-hop ({args.multihop_questions} q, their closed corpus)": qa_set(
            "multihop_dev", args.multihop_questions
        ),
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for precision in ("fp32", "bf16"):
        em = SentenceTransformerEmbedder(precision=precision, threads=1)
        em.load()
        em.embed(["warm up"] * 4)
        results[precision] = {name: retrieval(em, qs, docs) for name, (qs, docs) in sets.items()}
        print(precision, results[precision], flush=True)

    lines = [
        "| set | precision | paragraphs/s | recall@2 | recall@5 | recall@10 | MRR |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in sets:
        for precision in ("fp32", "bf16"):
            r = results[precision][name]
            lines.append(
                f"| {name} | {precision} | {r['docs_per_s']:.1f} | {r['recall@2']:.3f} | "
                f"{r['recall@5']:.3f} | {r['recall@10']:.3f} | {r['mrr']:.3f} |"
            )
    speedup = {n: results["bf16"][n]["docs_per_s"] / results["fp32"][n]["docs_per_s"] for n in sets}
    drop = {n: results["fp32"][n]["recall@5"] - results["bf16"][n]["recall@5"] for n in sets}
    adopt = all(s > 1.0 for s in speedup.values()) and all(d <= 0.005 for d in drop.values())
    verdict = (
        f"bf16 / fp32 speed: {', '.join(f'{v:.2f}x' for v in speedup.values())}; "
        f"recall@5 change: {', '.join(f'{-v:+.3f}' for v in drop.values())}. "
        + (
            "bf16 qualifies as the default."
            if adopt
            else "fp32 stays the default: bf16 is not faster here, or loses quality."
        )
    )
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = "avx512_bf16" if "avx512_bf16" in flags else "no native bf16"
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} ({cpu}), "
        "one torch thread. Reproduce: `python -m tests.benchmarks.precision "
        f"--multihop-questions {args.multihop_questions}`."
    )
    body = header + "\n\n" + "\n".join(lines) + "\n\n" + verdict
    print(body)
    if not args.no_write:
        write_section("Embedder precision: fp32 or bf16", body)


if __name__ == "__main__":
    main()
