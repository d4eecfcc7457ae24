"""The ingestion pipeline: chunk -> extract -> resolve -> embed -> store, for one document.

Models are blocking and CPU-bound, so each stage runs in a worker thread and the event
loop stays free for queries. The store stage writes vectors first and the graph last in
one transaction: a document becomes visible only when everything it needs is written,
and a failure removes the vectors again, so nothing is half-written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
from app.pipeline.chunking import chunk_text
from app.pipeline.progress import utcnow
from app.pipeline.resolution import resolve_document
from app.ports.graph_store import GraphStore
from app.ports.models import Embedder, Extractor
from app.ports.vector_store import VectorStore

StageReporter = Callable[[Stage], Awaitable[None]]


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
        doc_in = request.input
        doc_id = request.document_id

        chunks = await asyncio.to_thread(self._chunk, doc_id, doc_in.text)
        await report(Stage.CHUNKED)

        extracted = await asyncio.to_thread(self._extractor.extract, [c.text for c in chunks])
        await report(Stage.EXTRACTED)

        resolved = resolve_document(doc_id, chunks, extracted)
        await report(Stage.RESOLVED)

        embeddings = await asyncio.to_thread(self._embedder.embed, [c.text for c in chunks])
        await report(Stage.EMBEDDED)

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
        await self._store(bundle, points)
        await report(Stage.STORED)
        return IngestResult(bundle=bundle, vectors=len(points))

    def _chunk(self, doc_id: str, text: str) -> list[Chunk]:
        sentences = self._extractor.sentences([text])[0]
        pieces = chunk_text(
            text,
            sentences,
            self._embedder.count_tokens,
            target_tokens=min(self._settings.chunk_tokens, self._embedder.max_tokens),
            overlap_tokens=self._settings.chunk_overlap_tokens,
        )
        return [
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

    async def _store(self, bundle: DocumentBundle, points: list[VectorPoint]) -> None:
        doc_id = bundle.document.id
        try:
            await self._vectors.upsert(points)
            await self._graph.write_document(bundle)
        except BaseException:
            # Undo the vectors: the graph write is one transaction and either happened
            # whole or not at all; if it did not, no vector may point at the document.
            await asyncio.shield(self._vectors.delete_documents([doc_id]))
            raise
