"""The worker loop: takes ingestion requests from the bus and runs the pipeline.

A request is acknowledged only after its document is fully stored (or its job has
failed for good), so a worker that dies mid-document leaves the request to be delivered
again; writes are idempotent, so the replay duplicates nothing.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from app.domain.errors import KGError
from app.domain.models import IngestionJob, IngestionRequest, JobStatus, Stage
from app.pipeline.ingest import IngestionPipeline
from app.pipeline.progress import JobTracker
from app.ports.event_bus import Delivery, EventBus
from app.ports.graph_store import GraphStore
from app.ports.job_store import JobStore

log = structlog.get_logger(__name__)


class IngestionWorker:
    def __init__(
        self,
        bus: EventBus,
        jobs: JobStore,
        graph: GraphStore,
        pipeline: IngestionPipeline,
        tracker: JobTracker,
        concurrency: int = 1,
    ) -> None:
        self._bus = bus
        self._jobs = jobs
        self._graph = graph
        self._pipeline = pipeline
        self._tracker = tracker
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Consume requests until the bus closes or the task is cancelled."""
        try:
            async for delivery in self._bus.requests():
                await self._slots.acquire()
                task = asyncio.create_task(self._handle(delivery))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _handle(self, delivery: Delivery) -> None:
        try:
            await self.process(delivery.request)
            await delivery.ack()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Not acknowledged: the bus will deliver it again.
            log.exception("ingestion.delivery_failed", job_id=delivery.request.job_id)
        finally:
            self._slots.release()

    async def process(self, request: IngestionRequest) -> IngestionJob:
        """Run one request to COMPLETED or FAILED; infrastructure errors propagate."""
        structlog.contextvars.bind_contextvars(job_id=request.job_id, request_id=request.request_id)
        try:
            job = await self._job_of(request)
            if job.status.finished:
                return job
            existing = (await self._graph.get_documents([request.document_id]))[0]
            if existing is not None:
                return await self._tracker.advance(
                    job, Stage.COMPLETED, message="document already ingested"
                )

            async def report(stage: Stage) -> None:
                nonlocal job
                job = await self._tracker.advance(job, stage)

            try:
                result = await self._pipeline.run(request, report)
            except KGError as exc:
                if exc.retryable:
                    raise
                log.warning("ingestion.failed", error=exc.message, code=exc.code)
                return await self._tracker.advance(job, Stage.FAILED, error=exc.message)
            except (ValueError, TypeError, UnicodeError) as exc:
                log.exception("ingestion.failed")
                return await self._tracker.advance(
                    job, Stage.FAILED, error=f"could not process the document: {exc}"
                )
            b = result.bundle
            log.info(
                "ingestion.completed",
                document_id=b.document.id,
                chunks=len(b.chunks),
                entities=len(b.entities),
                relations=len(b.relations),
            )
            return await self._tracker.advance(
                job,
                Stage.COMPLETED,
                message=(
                    f"{len(b.chunks)} chunks, {len(b.entities)} entities, "
                    f"{len(b.relations)} relations"
                ),
            )
        finally:
            structlog.contextvars.unbind_contextvars("job_id", "request_id")

    async def _job_of(self, request: IngestionRequest) -> IngestionJob:
        job = (await self._jobs.get([request.job_id]))[0]
        if job is None:  # a request whose job record was lost: recreate it
            job = self._tracker.new_job(request.job_id, request.document_id)
            await self._jobs.create(job, request)
        if job.status is JobStatus.RUNNING:
            log.info("ingestion.resumed", stage=job.stage.value)
        return job
