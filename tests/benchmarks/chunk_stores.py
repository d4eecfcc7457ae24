"""Stores of N chunks for the query benchmarks, written without the ingestion pipeline.

Why not ingest: the embedder does 20-40 chunks/s here, so 100,000 chunks through the
pipeline take about an hour. Instead the chunks are made from the real paragraphs of the
shared data (the QA paragraphs and the Wikipedia corpus, deduplicated, in a seeded
shuffle) and written with the real adapters, so the server reads them as it reads its own:

- every paragraph is one document (normalised title and text, the ids of
  ``app.domain.ids``); its chunks are its sentences (the extractor's splitter), the
  clauses of its sentences (the parts between ``,``, ``;`` and ``:``, three words or
  more) and its windows of two consecutive sentences, each within the pipeline's budget
  of 256 tokens; a text already taken is skipped, so every chunk is distinct. Documents
  are taken in order until N chunks: the 10,000-chunk store is a prefix of the
  100,000-chunk one. Short chunks are what make 100,000 distinct chunks out of ~1.2M
  tokens of text, and embeddable in tens of minutes, not hours; the vectors are still
  the real model's on real text. The cost: keyword search sees shorter posting lists
  than 100,000 chunks of 256 tokens would give.
- vectors are the real embedder's (the settings' model, fp32) of each chunk's text.
- entities, mentions and relations come from the real extractor and
  ``resolve_document``, run on the one-sentence chunks only: resolution keeps a mention in
  its earliest chunk and relations never cross a sentence, so clauses and windows would add
  nothing but the cost.

Embeddings and extractions are cached per text under ``~/.cache/kg-bench`` (keyed by
model name and a hash of the text), so a rerun skips them; finished stores are kept
there too, keyed by what went into them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import pickle
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.adapters.qdrant_edge_vector_store import QdrantEdgeVectorStore
from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.config import load_settings
from app.container import make_embedder, make_extractor
from app.domain.ids import chunk_id, document_id
from app.domain.models import Chunk, Document, DocumentBundle, VectorPoint
from app.pipeline.normalise import normalise, normalise_title
from app.pipeline.progress import utcnow
from app.pipeline.resolution import resolve_document
from app.ports.models import Embedder, ExtractedText, Extractor, Span
from tests.benchmarks.common import SHARED, read_jsonl

CACHE = Path.home() / ".cache" / "kg-bench"
SEED = 20261130
WINDOW = 2  # sentences in a window
MIN_CLAUSE_WORDS = 3
_CLAUSE_END = re.compile(r"[,;:](?=\s)")
CHUNK_TOKENS = 256  # the pipeline's default chunk budget
SHARD = 2_048  # texts embedded (and cached) per step
NOTHING = ExtractedText((), (), ())
SOURCES = (
    ("qa/singlehop_dev/docs.jsonl", "xquad"),
    ("qa/multihop_dev/docs.jsonl", "hotpotqa+musique"),
    ("corpus/docs.jsonl", "2wikimultihopqa"),
)


@dataclass(frozen=True, slots=True)
class Paragraph:
    id: str
    title: str
    text: str
    source: str


@dataclass(frozen=True, slots=True)
class Piece:
    """A chunk to be: ``text == paragraph.text[start:end]``."""

    paragraph: int
    start: int
    end: int
    text: str
    kind: str  # sentence, clause, or a window of sentences
    tokens: int


def paragraphs() -> list[Paragraph]:
    """Every distinct paragraph of the shared data, normalised, in a seeded shuffle."""
    seen: set[str] = set()
    out: list[Paragraph] = []
    for relative, source in SOURCES:
        for row in read_jsonl(SHARED / relative):
            title, text = normalise_title(row["title"]), normalise(row["text"])
            doc_id = document_id(title, text)
            if text and doc_id not in seen:
                seen.add(doc_id)
                out.append(Paragraph(doc_id, title, text, row.get("source") or source))
    random.Random(SEED).shuffle(out)
    return out


def pieces(
    paras: Sequence[Paragraph],
    sentences: Sequence[Sequence[Span]],
    count_tokens: Callable[[Sequence[str]], list[int]],
    limit: int,
) -> list[Piece]:
    """The first ``limit`` chunks: per paragraph its sentences, their clauses, then its
    windows of ``WINDOW`` sentences; a text already taken is skipped."""
    used: set[str] = set()
    out: list[Piece] = []
    for index, (para, spans) in enumerate(zip(paras, sentences, strict=True)):
        trimmed = [t for t in (_trimmed(para.text, s.start, s.end) for s in spans) if t[0] < t[1]]
        windows = [
            (trimmed[i][0], trimmed[i + WINDOW - 1][1], f"{WINDOW} sentences")
            for i in range(len(trimmed) - WINDOW + 1)
        ]
        clauses = [(a, b, "clause") for s, e in trimmed for a, b in _clauses(para.text, s, e)]
        candidates = [(s, e, "sentence") for s, e in trimmed] + clauses + windows
        texts = [para.text[s:e] for s, e, _ in candidates]
        for (start, end, kind), text, tokens in zip(
            candidates, texts, count_tokens(texts), strict=True
        ):
            if tokens <= CHUNK_TOKENS and text not in used:
                used.add(text)
                out.append(Piece(index, start, end, text, kind, tokens))
                if len(out) == limit:
                    return out
    return out


def _clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The parts of a sentence between ``,``, ``;`` and ``:`` of ``MIN_CLAUSE_WORDS``
    words or more, when there are two parts or more."""
    parts: list[tuple[int, int]] = []
    at = start
    for m in _CLAUSE_END.finditer(text, start, end):
        parts.append(_trimmed(text, at, m.start()))
        at = m.end()
    if not parts:
        return []
    parts.append(_trimmed(text, at, end))
    return [(a, b) for a, b in parts if len(text[a:b].split()) >= MIN_CLAUSE_WORDS]


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


KEY_BYTES = 16


def text_key(model: str, text: str) -> bytes:
    return hashlib.sha256(f"{model}\0{text}".encode()).digest()[:KEY_BYTES]


class VectorCache:
    """Embeddings by (model, text) in ``.npz`` shards; missing ones are computed and saved
    a shard at a time, so an interrupted run keeps what it did."""

    def __init__(self, embedder: Embedder, root: Path = CACHE) -> None:
        self._embedder = embedder
        self._dir = root / "embeddings" / _safe(embedder.name)
        self._rows: dict[bytes, np.ndarray] = {}
        for shard in sorted(self._dir.glob("*.npz")):
            with np.load(shard) as data:
                for key, row in zip(data["keys"], data["vectors"], strict=True):
                    # numpy's bytes type drops trailing NULs: give them back.
                    self._rows[bytes(key).ljust(KEY_BYTES, b"\0")] = row

    def vectors(self, texts: Sequence[str], progress: Callable[[str], None]) -> list[np.ndarray]:
        keys = [text_key(self._embedder.name, t) for t in texts]
        missing = list(
            dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self._rows)
        )
        started = time.perf_counter()
        for i in range(0, len(missing), SHARD):
            batch = missing[i : i + SHARD]
            found = np.asarray(self._embedder.embed(batch), dtype=np.float32)
            batch_keys = [text_key(self._embedder.name, t) for t in batch]
            self._dir.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha256(b"".join(batch_keys)).hexdigest()[:16]
            np.savez(
                self._dir / f"{name}.npz",
                keys=np.array(batch_keys, dtype=f"S{KEY_BYTES}"),
                vectors=found,
            )
            self._rows.update(zip(batch_keys, found, strict=True))
            done = i + len(batch)
            rate = done / (time.perf_counter() - started)
            progress(f"embedded {done}/{len(missing)} new texts ({rate:.0f}/s)")
        return [self._rows[k] for k in keys]


class ExtractionCache:
    """Extractions by (model, text) in pickle shards, computed like ``VectorCache``."""

    def __init__(self, extractor: Extractor, root: Path = CACHE) -> None:
        self._extractor = extractor
        self._dir = root / "extractions" / _safe(extractor.name)
        self._rows: dict[bytes, ExtractedText] = {}
        for shard in sorted(self._dir.glob("*.pickle")):
            self._rows.update(pickle.loads(shard.read_bytes()))

    def extractions(
        self, texts: Sequence[str], progress: Callable[[str], None]
    ) -> list[ExtractedText]:
        name = self._extractor.name
        keys = [text_key(name, t) for t in texts]
        missing = list(
            dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in self._rows)
        )
        for i in range(0, len(missing), SHARD):
            batch = missing[i : i + SHARD]
            rows = dict(
                zip((text_key(name, t) for t in batch), self._extractor.extract(batch), strict=True)
            )
            self._dir.mkdir(parents=True, exist_ok=True)
            shard = hashlib.sha256(b"".join(rows)).hexdigest()[:16]
            (self._dir / f"{shard}.pickle").write_bytes(pickle.dumps(rows))
            self._rows.update(rows)
            progress(f"extracted {i + len(batch)}/{len(missing)} new sentences")
        return [self._rows[k] for k in keys]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


@dataclass(frozen=True, slots=True)
class Corpus:
    """The chunks of the largest store, with their vectors and extractions."""

    paragraphs: list[Paragraph]
    pieces: list[Piece]
    vectors: list[np.ndarray]
    extractions: list[ExtractedText]
    key: str  # what went into them, for store directories

    def describe(self, size: int) -> str:
        chosen = self.pieces[:size]
        documents = len({p.paragraph for p in chosen})
        by_kind: dict[str, int] = {}
        for p in chosen:
            by_kind[p.kind] = by_kind.get(p.kind, 0) + 1
        mix = ", ".join(f"{n:,} {kind}" for kind, n in by_kind.items())
        tokens = sum(p.tokens for p in chosen) / max(len(chosen), 1)
        return (
            f"{len(chosen):,} chunks from {documents:,} paragraphs, {tokens:.0f} tokens each "
            f"on average: {mix}"
        )


def prepare(
    size: int, embedder: Embedder, extractor: Extractor, progress: Callable[[str], None]
) -> Corpus:
    """The first ``size`` chunks, embedding and extracting what the cache lacks."""
    paras = paragraphs()
    extractor.load()
    spans = extractor.sentences([p.text for p in paras])
    chosen = pieces(paras, spans, embedder.count_tokens, size)
    if len(chosen) < size:
        raise SystemExit(f"the shared data yields only {len(chosen):,} distinct chunks")
    progress(f"{len(chosen):,} chunks from {len({p.paragraph for p in chosen}):,} paragraphs")
    texts = [p.text for p in chosen]
    vectors = VectorCache(embedder).vectors(texts, progress)
    singles = [p.text for p in chosen if p.kind == "sentence"]
    found = dict(
        zip(singles, ExtractionCache(extractor).extractions(singles, progress), strict=True)
    )
    extractions = [found[p.text] if p.kind == "sentence" else NOTHING for p in chosen]
    digest = hashlib.sha256(f"{embedder.name}\0{extractor.name}\0".encode())
    for p in chosen:
        digest.update(f"{paras[p.paragraph].id}\0{p.start}\0{p.end}\n".encode())
    return Corpus(paras, chosen, vectors, extractions, digest.hexdigest()[:12])


@dataclass(frozen=True, slots=True)
class StoreInfo:
    path: Path
    chunks: int
    documents: int
    entities: int
    relations: int
    seconds: float  # to write it (0 when it was already there)


def store(corpus: Corpus, size: int, dimension: int, progress: Callable[[str], None]) -> StoreInfo:
    """The data directory of a store of the first ``size`` chunks, written if missing."""
    path = CACHE / "stores" / f"{corpus.key}-{size}"
    marker = path / "complete.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        return StoreInfo(
            path, info["chunks"], info["documents"], info["entities"], info["relations"], 0.0
        )
    if path.exists():
        _remove(path)
    started = time.perf_counter()
    counts = asyncio.run(_write(path, corpus, size, dimension, progress))
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({**counts, "seconds": seconds}))
    return StoreInfo(
        path,
        counts["chunks"],
        counts["documents"],
        counts["entities"],
        counts["relations"],
        seconds,
    )


async def _write(
    path: Path, corpus: Corpus, size: int, dimension: int, progress: Callable[[str], None]
) -> dict[str, int]:
    graph = SqliteGraphStore(path / "graph.sqlite3")
    vectors = QdrantEdgeVectorStore(path / "vectors")
    await graph.start()
    await vectors.start(dimension)
    entities: set[str] = set()
    relations: set[str] = set()
    points: list[VectorPoint] = []
    groups = _by_paragraph(range(size), corpus.pieces)
    try:
        for n, (para_index, members) in enumerate(groups, start=1):
            bundle, batch = _bundle(corpus, para_index, members)
            entities.update(e.id for e in bundle.entities)
            relations.update(r.id for r in bundle.relations)
            points.extend(batch)
            if len(points) >= 4_096 or n == len(groups):
                await vectors.upsert(points)
                points = []
            await graph.write_document(bundle)
            if n % 1_000 == 0:
                progress(f"wrote {n:,}/{len(groups):,} documents")
    finally:
        await vectors.close()
        await graph.close()
    return {
        "chunks": size,
        "documents": len(groups),
        "entities": len(entities),
        "relations": len(relations),
    }


def _by_paragraph(indexes: Iterable[int], chosen: Sequence[Piece]) -> list[tuple[int, list[int]]]:
    groups: dict[int, list[int]] = {}
    for i in indexes:
        groups.setdefault(chosen[i].paragraph, []).append(i)
    return list(groups.items())


def _bundle(
    corpus: Corpus, para_index: int, members: list[int]
) -> tuple[DocumentBundle, list[VectorPoint]]:
    para = corpus.paragraphs[para_index]
    chunks = [
        Chunk(
            id=chunk_id(para.id, index),
            document_id=para.id,
            index=index,
            text=corpus.pieces[i].text,
            start=corpus.pieces[i].start,
            end=corpus.pieces[i].end,
            token_count=corpus.pieces[i].tokens,
        )
        for index, i in enumerate(members)
    ]
    resolved = resolve_document(para.id, chunks, [corpus.extractions[i] for i in members])
    document = Document(
        id=para.id,
        title=para.title,
        text=para.text,
        source=para.source,
        published_at=None,
        ingested_at=utcnow(),
        metadata={"benchmark": "query_latency"},
        chunk_count=len(chunks),
    )
    bundle = DocumentBundle(
        document,
        tuple(chunks),
        resolved.entities,
        resolved.mentions,
        resolved.relations,
        resolved.evidence,
    )
    types: dict[str, set[str]] = {}
    by_id = {e.id: e for e in resolved.entities}
    for m in resolved.mentions:
        types.setdefault(m.chunk_id, set()).add(by_id[m.entity_id].type)
    points = [
        VectorPoint(
            chunk_id=c.id,
            document_id=para.id,
            vector=[float(x) for x in corpus.vectors[i]],
            entity_types=tuple(sorted(types.get(c.id, ()))),
        )
        for c, i in zip(chunks, members, strict=True)
    ]
    return bundle, points


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def ready_store(size: int, progress: Callable[[str], None]) -> StoreInfo:
    """The store of ``size`` chunks with the settings' embedder and extractor, prepared
    and written if the cache lacks it: what a benchmark of one store starts from."""
    settings = load_settings()
    embedder = make_embedder(settings)
    corpus = prepare(size, embedder, make_extractor(settings), progress)
    return store(corpus, size, embedder.dimension, progress)
