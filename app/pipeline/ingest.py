"""The ingestion pipeline: chunk -> extract -> resolve -> embed -> store.

It runs a batch of documents through each stage together: the models are far faster on
one call of many texts than on many calls of one (short documents gain most), and the
stage events still go out per document. Models are blocking and CPU-bound, so each model
stage runs in a worker thread and the event loop stays free for queries.

The store stage writes each document's vectors first and its graph last, in one
transaction: a document becomes visible only when everything it needs is written, and a
failure removes its vectors again, so nothing is half-written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import structlog

from app.config import PipelineSettings
from app.domain.ids import chunk_id
from app.domain.models import (
    Chunk,
    Document,
    DocumentBundle,
    IngestionRequest,
    Stage,
    VectorPoint,
)
from app.observability.metrics import INGESTION_STAGE_SECONDS
from app.pipeline.chunking import chunk_text
from app.pipeline.progress import utcnow
from app.pipeline.resolution import ResolvedDocument, resolve_document
from app.ports.graph_store import GraphStore
from app.ports.models import Embedder, Extractor
from app.ports.vector_store import VectorStore

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Reports that the document of ``request`` reached ``stage``.
StageReporter = Callable[[IngestionRequest, Stage], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IngestResult:
    bundle: DocumentBundle
    vectors: int


class IngestionPipeline:
    def __init__(
        self,
        extractor: Extractor,
        embedder: Embedder,
        graph: GraphStore,
        vectors: VectorStore,
        settings: PipelineSettings,
    ) -> None:
        self._extractor = extractor
        self._embedder = embedder
        self._graph = graph
        self._vectors = vectors
        self._settings = settings

    async def run(self, request: IngestionRequest, report: StageReporter) -> IngestResult:
        """One document; raises what its stages raise."""
        result = (await self.run_batch([request], report))[0]
        if isinstance(result, BaseException):
            raise result
        return result

    async def run_batch(
        self, requests: Sequence[IngestionRequest], report: StageReporter
    ) -> list[IngestResult | Exception]:
        """Each document's result, or the error that stopped it.

        A failure of a model stage on the whole batch is retried document by document,
        so one bad document does not fail the others; stages already reported for a
        document are not reported again.
        """
        report = _forward_only(report)
        if len(requests) > 1:
            try:
                prepared = await self._prepare(requests, report)
            except Exception:
                return [await self._one(r, report) for r in requests]
        else:
            try:
                prepared = await self._prepare(requests, report)
            except Exception as exc:
                return [exc]
        results: list[IngestResult | Exception] = []
        for request, (chunks, resolved, embeddings) in zip(requests, prepared, strict=True):
            try:
                results.append(await self._store(request, chunks, resolved, embeddings))
                await report(request, Stage.STORED)
            except Exception as exc:
                results.append(exc)
        return results

    async def _one(
        self, request: IngestionRequest, report: StageReporter
    ) -> IngestResult | Exception:
        return (await self.run_batch([request], report))[0]

    async def _prepare(
        self, requests: Sequence[IngestionRequest], report: StageReporter
    ) -> list[tuple[list[Chunk], ResolvedDocument, list[list[float]]]]:
        with _timed(Stage.CHUNKED):
            per_doc = await asyncio.to_thread(self._chunk_all, requests)
        await _each(requests, report, Stage.CHUNKED)

        flat = [c.text for chunks in per_doc for c in chunks]
        with _timed(Stage.EXTRACTED):
            extracted = _split(await asyncio.to_thread(self._extractor.extract, flat), per_doc)
        await _each(requests, report, Stage.EXTRACTED)

        with _timed(Stage.RESOLVED):
            resolved = [
                resolve_document(r.document_id, chunks, found)
                for r, chunks, found in zip(requests, per_doc, extracted, strict=True)
            ]
        await _each(requests, report, Stage.RESOLVED)

        with _timed(Stage.EMBEDDED):
            embeddings = _split(await asyncio.to_thread(self._embedder.embed, flat), per_doc)
        await _each(requests, report, Stage.EMBEDDED)
        log.debug("ingestion.batch_prepared", documents=len(requests), chunks=len(flat))
        return list(zip(per_doc, resolved, embeddings, strict=True))

    def _chunk_all(self, requests: Sequence[IngestionRequest]) -> list[list[Chunk]]:
        texts = [r.input.text for r in requests]
        sentences = self._extractor.sentences(texts)
        target = min(self._settings.chunk_tokens, self._embedder.max_tokens)
        out: list[list[Chunk]] = []
        for request, text, spans in zip(requests, texts, sentences, strict=True):
            pieces = chunk_text(
                text,
                spans,
                self._embedder.count_tokens,
                target_tokens=target,
                overlap_tokens=self._settings.chunk_overlap_tokens,
            )
            doc_id = request.document_id
            out.append(
                [
                    Chunk(
                        id=chunk_id(doc_id, p.index),
                        document_id=doc_id,
                        index=p.index,
                        text=p.text,
                        start=p.start,
                        end=p.end,
                        token_count=p.token_count,
                    )
                    for p in pieces
                ]
            )
        return out

    async def _store(
        self,
        request: IngestionRequest,
        chunks: list[Chunk],
        resolved: ResolvedDocument,
        embeddings: list[list[float]],
    ) -> IngestResult:
        doc_in = request.input
        doc_id = request.document_id
        document = Document(
            id=doc_id,
            title=doc_in.title,
            text=doc_in.text,
            source=doc_in.source,
            published_at=doc_in.published_at,
            ingested_at=utcnow(),
            metadata=doc_in.metadata,
            chunk_count=len(chunks),
        )
        bundle = DocumentBundle(
            document=document,
            chunks=tuple(chunks),
            entities=resolved.entities,
            mentions=resolved.mentions,
            relations=resolved.relations,
            evidence=resolved.evidence,
        )
        types_by_chunk: dict[str, set[str]] = {}
        by_id = {e.id: e for e in resolved.entities}
        for m in resolved.mentions:
            types_by_chunk.setdefault(m.chunk_id, set()).add(by_id[m.entity_id].type)
        points = [
            VectorPoint(
                chunk_id=c.id,
                document_id=doc_id,
                vector=vec,
                entity_types=tuple(sorted(types_by_chunk.get(c.id, ()))),
            )
            for c, vec in zip(chunks, embeddings, strict=True)
        ]
        try:
            with _timed(Stage.STORED):
                await self._vectors.upsert(points)
                await self._graph.write_document(bundle)
        except BaseException:
            # Undo the vectors: the graph write is one transaction and either happened
            # whole or not at all; if it did not, no vector may point at the document.
            await asyncio.shield(self._vectors.delete_documents([doc_id]))
            raise
        return IngestResult(bundle=bundle, vectors=len(points))


@contextmanager
def _timed(stage: Stage) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        INGESTION_STAGE_SECONDS.labels(stage=stage.value).observe(time.perf_counter() - started)


def _forward_only(report: StageReporter) -> StageReporter:
    reached: dict[str, int] = {}

    async def forward(request: IngestionRequest, stage: Stage) -> None:
        if stage.rank > reached.get(request.job_id, -1):
            reached[request.job_id] = stage.rank
            await report(request, stage)

    return forward


async def _each(requests: Sequence[IngestionRequest], report: StageReporter, stage: Stage) -> None:
    """Report a stage for every document of a batch at once: each report is a job update
    and an event, a round trip each on shared backends, so one after the other they
    would cost more than the work itself. The first failure is raised after all ran."""
    outcomes = await asyncio.gather(*(report(r, stage) for r in requests), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _split(flat: list[T], per_doc: list[list[Chunk]]) -> list[list[T]]:
    out: list[list[T]] = []
    at = 0
    for chunks in per_doc:
        out.append(flat[at : at + len(chunks)])
        at += len(chunks)
    return out
