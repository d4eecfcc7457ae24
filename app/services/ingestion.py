"""Ingestion use cases: submit documents, read jobs, follow their progress, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import structlog

from app.config import LimitSettings
from app.domain.errors import BadInputError, KGError, NotFoundError
from app.domain.ids import Kind, document_id, job_id, kind_of
from app.domain.models import (
    DeletedDocument,
    DocumentInput,
    IngestionEvent,
    IngestionJob,
    IngestionRequest,
    JobStatus,
    Stage,
)
from app.observability.metrics import EVENT_SUBSCRIPTIONS
from app.pipeline.progress import JobTracker, event_of
from app.ports.event_bus import EventBus
from app.ports.graph_store import GraphStore
from app.ports.job_store import JobStore
from app.ports.vector_store import VectorStore
from app.services.validation import check_batch, clean_document

log = structlog.get_logger(__name__)


class IngestionService:
    def __init__(
        self,
        graph: GraphStore,
        vectors: VectorStore,
        jobs: JobStore,
        bus: EventBus,
        tracker: JobTracker,
        limits: LimitSettings,
    ) -> None:
        self._graph = graph
        self._vectors = vectors
        self._jobs = jobs
        self._bus = bus
        self._tracker = tracker
        self._limits = limits

    async def submit(
        self, inputs: Sequence[DocumentInput], request_id: str | None = None
    ) -> list[IngestionJob]:
        """Validate every document first (all or nothing), then queue one job each.

        A document already in the graph gets a job that is COMPLETED at once.
        """
        check_batch(inputs, self._limits)
        where = "input" if len(inputs) == 1 else "inputs[{}]"
        cleaned = [
            clean_document(doc, self._limits, where.format(i)) for i, doc in enumerate(inputs)
        ]
        doc_ids = [document_id(d.title, d.text) for d in cleaned]
        existing = await self._graph.get_documents(list(dict.fromkeys(doc_ids)))
        stored = {d.id for d in existing if d is not None}

        jobs: list[IngestionJob] = []
        for doc, doc_id in zip(cleaned, doc_ids, strict=True):
            job = self._tracker.new_job(job_id(), doc_id)
            if doc_id in stored:
                done = replace(
                    job,
                    status=JobStatus.COMPLETED,
                    stage=Stage.COMPLETED,
                    progress=1.0,
                    finished_at=job.created_at,
                )
                await self._jobs.create(done, None)
                await self._tracker.announce(done, "document already ingested")
                jobs.append(done)
                continue
            request = IngestionRequest(
                job_id=job.id, document_id=doc_id, input=doc, request_id=request_id
            )
            await self._jobs.create(job, request)
            try:
                await self._tracker.announce(job)
                await self._bus.publish_request(request)
            except KGError as exc:
                await self._abandon(job, exc)
                raise
            jobs.append(job)
        log.info("ingestion.submitted", jobs=len(jobs), already=len(stored))
        return jobs

    async def _abandon(self, job: IngestionJob, error: KGError) -> None:
        """A job whose request never reached the bus ends FAILED, not QUEUED for ever
        (a shared bus has no restart-time resume). The client gets the error itself."""
        try:
            await self._tracker.advance(
                job, Stage.FAILED, error=f"could not queue the document: {error.message}"
            )
        except KGError:  # the event cannot go out either; the job record is what counts
            log.warning("ingestion.abandon_event_lost", job_id=job.id)
        log.warning("ingestion.not_queued", job_id=job.id, error=error.message)

    async def resume_unfinished(self) -> int:
        """Queue again the requests of jobs a previous process did not finish."""
        pending = await self._jobs.unfinished()
        for request in pending:
            await self._bus.publish_request(request)
        if pending:
            log.info("ingestion.resumed_unfinished", jobs=len(pending))
        return len(pending)

    async def jobs(self, ids: Sequence[str]) -> list[IngestionJob | None]:
        return await self._jobs.get(ids)

    async def progress(self, job: str) -> AsyncIterator[IngestionEvent]:
        """The job's current state, then each event of it, ending after it finishes."""
        events = self._subscribe()  # before reading the job, so nothing is missed
        try:
            current = (await self._jobs.get([job]))[0]
            if current is None:
                raise NotFoundError(f"no ingestion job with id {job!r}")
            yield event_of(current)
            if current.status.finished:
                return
            last = current.stage.rank
            async for event in events:
                # Events can arrive late (another process, another partition): a stage
                # at or before the one already reported is old news.
                if event.job_id != job or event.stage.rank <= last:
                    continue
                last = event.stage.rank
                yield event
                if event.status.finished:
                    return
        finally:
            await _unsubscribe(events)

    async def all_events(self) -> AsyncIterator[IngestionEvent]:
        """Every event from now on; the subscription ends with the client's."""
        events = self._subscribe()
        try:
            async for event in events:
                yield event
        finally:
            await _unsubscribe(events)

    def _subscribe(self) -> AsyncIterator[IngestionEvent]:
        events = self._bus.events()
        EVENT_SUBSCRIPTIONS.inc()
        return events

    async def delete_document(self, doc_id: str) -> DeletedDocument:
        if kind_of(doc_id) is not Kind.DOCUMENT:
            raise BadInputError(f"{doc_id!r} is not a document id (they start with 'doc_')")
        deleted = await self._graph.delete_document(doc_id)
        if deleted is None:
            raise NotFoundError(f"no document with id {doc_id!r}")
        await self._vectors.delete_documents([doc_id])
        log.info(
            "document.deleted",
            document_id=doc_id,
            chunks=len(deleted.chunk_ids),
            entities=len(deleted.removed_entity_ids),
            relations=len(deleted.removed_relation_ids),
        )
        return deleted


async def _unsubscribe(events: AsyncIterator[IngestionEvent]) -> None:
    EVENT_SUBSCRIPTIONS.dec()
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
