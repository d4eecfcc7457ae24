"""Ingestion throughput, end to end, next to the ceiling of its two heavy stages.

    python -m tests.benchmarks.ingest [--paragraphs 300] [--long 40] [--workers 1]

For each document set it measures, in one run and on the same text:
- spaCy alone: the extractor (NER, and the parser on sentences with two entities) over
  every chunk, batched across all documents;
- the embedder alone: every chunk, batched;
- end to end: the documents submitted to the ingestion service of a fresh container on
  embedded defaults, until every job is COMPLETED (chunking, extraction, resolution,
  embedding, SQLite and Qdrant Edge writes, job updates and events included).
The ceiling is the two stages run back to back; the ratio is end to end over it.
Results go to tests/benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from app.adapters.sentence_transformer_embedder import SentenceTransformerEmbedder
from app.adapters.spacy_extractor import SpacyExtractor
from app.config import load_settings
from app.container import build_container
from app.domain.models import DocumentInput
from app.pipeline.chunking import chunk_text
from app.pipeline.normalise import normalise
from tests.benchmarks.common import corpus, write_section


def long_documents(rows: list[dict[str, Any]], count: int, words: int) -> list[DocumentInput]:
    """Documents of about ``words`` words, made of consecutive corpus paragraphs."""
    docs: list[DocumentInput] = []
    if count <= 0:
        return docs
    parts: list[str] = []
    size = 0
    for row in rows:
        parts.append(row["text"])
        size += len(row["text"].split())
        if size >= words:
            docs.append(DocumentInput(title=f"Long {len(docs)}", text="\n\n".join(parts)))
            parts, size = [], 0
            if len(docs) == count:
                break
    return docs


def chunk_all(
    docs: list[DocumentInput], extractor: SpacyExtractor, embedder: SentenceTransformerEmbedder
) -> list[str]:
    texts = [normalise(d.text) for d in docs]
    sentences = extractor.sentences(texts)
    chunks: list[str] = []
    for text, spans in zip(texts, sentences, strict=True):
        chunks += [c.text for c in chunk_text(text, spans, embedder.count_tokens)]
    return chunks


def ceiling(
    docs: list[DocumentInput], extractor: SpacyExtractor, embedder: SentenceTransformerEmbedder
) -> dict[str, float]:
    chunks = chunk_all(docs, extractor, embedder)
    t0 = time.perf_counter()
    extractor.extract(chunks)
    t_spacy = time.perf_counter() - t0
    t0 = time.perf_counter()
    embedder.embed(chunks)
    t_embed = time.perf_counter() - t0
    return {"chunks": len(chunks), "spacy_s": t_spacy, "embed_s": t_embed}


async def end_to_end(
    docs: list[DocumentInput],
    extractor: SpacyExtractor,
    embedder: SentenceTransformerEmbedder,
    workers: int,
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp), pipeline={"workers": workers})
        container = build_container(settings, extractor=extractor, embedder=embedder)
        await container.start()
        try:
            events = container.bus.events()  # follow the jobs as a client would: by event
            t0 = time.perf_counter()
            jobs = []
            for start in range(0, len(docs), 100):  # batches within the API's limit
                jobs += await container.ingestion.submit(docs[start : start + 100])
            pending = {j.id for j in jobs}
            async for event in events:
                if event.job_id in pending and event.status.finished:
                    assert event.status.value == "COMPLETED", event
                    pending.discard(event.job_id)
                    if not pending:
                        break
            elapsed = time.perf_counter() - t0
            stats = await container.catalog.stats()
        finally:
            await container.close()
    return {"seconds": elapsed, "chunks": stats.chunks, "documents": stats.documents}


def row(name: str, docs: int, chunks: int, seconds: float) -> str:
    return f"| {name} | {docs / seconds:.2f} | {chunks / seconds:.1f} | {seconds:.2f} |"


def measure(
    name: str,
    docs: list[DocumentInput],
    workers: int,
    ex: SpacyExtractor,
    em: SentenceTransformerEmbedder,
) -> tuple[str, float]:
    # Warm up both models and the code paths once, outside the timings.
    chunk_all(docs[:3], ex, em)
    em.embed(["warm up"] * 8)
    ex.extract(["Warm up in Paris with Marie Curie."] * 8)
    c = ceiling(docs, ex, em)
    e = asyncio.run(end_to_end(docs, ex, em, workers))
    n = len(docs)
    both = c["spacy_s"] + c["embed_s"]
    ratio = both / e["seconds"]
    words = sum(len(d.text.split()) for d in docs) / n
    lines = [
        f"### {name}: {n} documents, {words:.0f} words and {c['chunks'] / n:.1f} chunks each",
        "",
        "| path | documents/s | chunks/s | seconds |",
        "|---|---|---|---|",
        row("spaCy alone (extract)", n, int(c["chunks"]), c["spacy_s"]),
        row("embedder alone", n, int(c["chunks"]), c["embed_s"]),
        row("ceiling: both back to back", n, int(c["chunks"]), both),
        row(f"end to end ({workers} in-process worker slot(s))", n, int(e["chunks"]), e["seconds"]),
        "",
        f"End to end / ceiling = **{ratio:.2f}** (target >= 0.80). "
        f"Stage shares of the ceiling: spaCy {c['spacy_s'] / both:.0%}, "
        f"embedder {c['embed_s'] / both:.0%}.",
    ]
    return "\n".join(lines), ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paragraphs", type=int, default=300)
    parser.add_argument("--long", type=int, default=30, help="1,000-word documents")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    ex = SpacyExtractor()
    em = SentenceTransformerEmbedder(precision=args.precision, threads=1)
    ex.load()
    em.load()
    rows = corpus(max(args.paragraphs, args.long * 20))
    paragraphs = [DocumentInput(title=r["title"], text=r["text"]) for r in rows[: args.paragraphs]]
    long_docs = long_documents(rows, args.long, 1000)

    sections = []
    for name, docs in (("Wikipedia paragraphs", paragraphs), ("1,000-word documents", long_docs)):
        if not docs:
            continue
        text, _ = measure(name, docs, args.workers, ex, em)
        print(text, "\n", flush=True)
        sections.append(text)
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores, one torch thread, {args.precision}, embedded defaults "
        f"(SQLite graph, Qdrant Edge vectors). Reproduce: `python -m tests.benchmarks.ingest "
        f"--paragraphs {args.paragraphs} --long {args.long} --workers {args.workers}"
        f" --precision {args.precision}`."
    )
    if not args.no_write:
        write_section(
            f"Ingestion throughput ({args.precision}, {args.workers} worker slot(s))",
            header + "\n\n" + "\n\n".join(sections),
        )


if __name__ == "__main__":
    main()
