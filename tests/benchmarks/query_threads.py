"""One query's embedding on one ONNX Runtime thread against two, side by side.

Why: a request waits on that one embedding, so a second thread should shorten it when
another core is free, and costs something when none is; which of the two wins decides
``KG_PIPELINE__QUERY_THREADS``'s default (1 on two cores, 2 from four). This measures
both: the embedder with 1 and with 2 query threads (the settings' query precision),
loaded side by side in this process, embedding the same real questions in turn
(``common.alternate``), so both see the same moments of a shared machine; then the same
again with a busy loop holding the other core.

    python -m tests.benchmarks.query_threads [--queries 300]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from app.adapters.sentence_transformer_embedder import SentenceTransformerEmbedder
from app.config import load_settings
from tests.benchmarks.common import alternate, write_section
from tests.benchmarks.latency_client import stats
from tests.benchmarks.query_latency import load_average, questions, revision

WARMUP = 20


def _spin(stop: float) -> None:
    """Keep one core busy until ``stop`` (a time.time())."""
    while time.time() < stop:
        pass


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    pipeline = load_settings().pipeline
    model, precision = pipeline.embedding_model, pipeline.query_precision
    embedders = [
        SentenceTransformerEmbedder(model=model, query_threads=n, query_precision=precision)
        for n in (1, 2)
    ]
    for embedder in embedders:
        embedder.load()
        if embedder.query_backend != "onnx":
            raise SystemExit("queries are not on ONNX Runtime here: nothing to compare")
    texts = questions(args.queries)
    alternate(embedders, texts[:WARMUP])
    loads = (load_average(), "")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    idle = alternate(embedders, texts)
    spinner = multiprocessing.Process(target=_spin, args=(time.time() + 600,), daemon=True)
    spinner.start()
    try:
        busy = alternate(embedders, texts)
    finally:
        spinner.terminate()
        spinner.join()
    lines = [
        f"Measured {when} ({revision()}) on {os.cpu_count()} cores shared with other work "
        f"(load average {loads[0]} at the start, {load_average()} at the end). {model}, queries from "
        f"{precision} weights, {len(texts)} real questions embedded one at a time through "
        "ONNX Runtime by two embedders loaded side by side (1 and 2 query threads), in turn "
        "(which goes first swaps at every question); then again "
        "with a busy loop in another process holding a core. Reproduce: "
        f"`python -m tests.benchmarks.query_threads --queries {args.queries}`.",
        "",
        "| other core | threads | p50 ms | p95 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|---|",
    ]
    for label, runs in (("free", idle), ("busy", busy)):
        for threads, times in zip((1, 2), runs, strict=True):
            t = stats(times)
            lines.append(
                f"| {label} | {threads} | {t.p50:.2f} | {t.p95:.2f} | {t.p99:.2f} | {t.mean:.2f} |"
            )
    lines += [""]
    for label, runs in (("free", idle), ("busy", busy)):
        one, two = (stats(times) for times in runs)
        lines.append(
            f"- other core {label}: 2 threads / 1 thread at p50 **{two.p50 / one.p50:.2f}**, "
            f"at p99 **{two.p99 / one.p99:.2f}**."
        )
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("Query embedding: one ONNX thread or two", body)


if __name__ == "__main__":
    main()
