"""The worker loop: takes ingestion requests from the bus and runs the pipeline.

Requests are read into a small local queue; each of ``concurrency`` slots takes what is
waiting there (up to a batch of documents and characters) and runs it through the
pipeline together. Two slots keep both cores busy: one batch embeds while the next is
parsed.

A request is acknowledged only after its document is fully stored (or its job has
failed for good), so a worker that dies mid-document leaves the request to be delivered
again; writes are idempotent, so the replay duplicates nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog

from app.domain.errors import KGError
from app.domain.models import IngestionJob, IngestionRequest, Stage
from app.pipeline.ingest import IngestionPipeline, IngestResult
from app.pipeline.progress import JobTracker
from app.ports.event_bus import Delivery, EventBus
from app.ports.graph_store import GraphStore
from app.ports.job_store import JobStore

log = structlog.get_logger(__name__)

BATCH_DOCUMENTS = 32
BATCH_CHARACTERS = 50_000
RETRY_DELAYS = (0.5, 2.0, 8.0)  # seconds before each new try of a retryable failure


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
        self._concurrency = max(1, concurrency)

    async def run(self) -> None:
        """Consume requests until the bus closes or the task is cancelled."""
        waiting: asyncio.Queue[Delivery | None] = asyncio.Queue(maxsize=BATCH_DOCUMENTS)
        slots = [
            asyncio.create_task(self._slot(waiting), name=f"ingestion-slot-{i}")
            for i in range(self._concurrency)
        ]
        try:
            async for delivery in self._bus.requests():
                await waiting.put(delivery)
            for _ in slots:
                await waiting.put(None)  # the bus closed: let each slot finish and stop
            await asyncio.gather(*slots)
        finally:
            for slot in slots:
                slot.cancel()
            for slot in slots:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await slot

    async def _slot(self, waiting: asyncio.Queue[Delivery | None]) -> None:
        while True:
            first = await waiting.get()
            if first is None:
                return
            batch = [first]
            size = len(first.request.input.text)
            while len(batch) < BATCH_DOCUMENTS and size < BATCH_CHARACTERS:
                try:
                    more = waiting.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if more is None:
                    waiting.put_nowait(None)  # for this slot's next turn
                    break
                batch.append(more)
                size += len(more.request.input.text)
            await self._handle(batch)

    async def _handle(self, batch: Sequence[Delivery]) -> None:
        """Process a batch, trying again after retryable failures; acknowledge each
        request once its job has ended. A batch whose job records cannot even be
        written stays unacknowledged, for the bus to deliver again. Requests the bus
        has moved to another worker meanwhile are left to it."""
        pending = [d for d in batch if not d.moved]
        if len(pending) < len(batch):
            log.info("ingestion.moved_requests_skipped", requests=len(batch) - len(pending))
        if not pending:
            return
        for attempt in range(len(RETRY_DELAYS) + 1):
            final = attempt == len(RETRY_DELAYS)
            try:
                done = await self.process([d.request for d in pending], final=final)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingestion.batch_failed", jobs=[d.request.job_id for d in pending])
                done = set()
            # together: a Kafka consumer then commits once per partition, not per request
            await asyncio.gather(*(d.ack() for d in pending if d.request.job_id in done))
            pending = [d for d in pending if d.request.job_id not in done and not d.moved]
            if not pending or final:
                return
            await asyncio.sleep(RETRY_DELAYS[attempt])

    async def process(
        self, requests: Sequence[IngestionRequest], *, final: bool = True
    ) -> set[str]:
        """Run requests to COMPLETED or FAILED; returns the job ids that ended.

        A retryable failure leaves its job unfinished unless this is the ``final`` try.
        """
        jobs: dict[str, IngestionJob] = {}
        todo: list[IngestionRequest] = []
        ended: set[str] = set()
        existing = await self._graph.get_documents([r.document_id for r in requests])
        stored = {d.id for d in existing if d is not None}
        found = await self._jobs.get([r.job_id for r in requests])
        for request, known in zip(requests, found, strict=True):
            job = known or await self._recreate_job(request)
            if job.status.finished:
                # A worker that died between recording the end and announcing it left
                # subscribers waiting: say it again (events are at least once).
                await self._tracker.announce(job, "already finished")
                ended.add(job.id)
            elif request.document_id in stored:
                await self._tracker.advance(
                    job, Stage.COMPLETED, message="document already ingested"
                )
                ended.add(job.id)
            else:
                jobs[job.id] = job
                todo.append(request)
        if not todo:
            return ended

        async def report(request: IngestionRequest, stage: Stage) -> None:
            jobs[request.job_id] = await self._tracker.advance(jobs[request.job_id], stage)

        results = await self._pipeline.run_batch(todo, report)
        for request, result in zip(todo, results, strict=True):
            if await self._finish(jobs[request.job_id], request, result, final):
                ended.add(request.job_id)
        return ended

    async def _finish(
        self,
        job: IngestionJob,
        request: IngestionRequest,
        result: IngestResult | Exception,
        final: bool,
    ) -> bool:
        bound = {"job_id": request.job_id, "request_id": request.request_id}
        if isinstance(result, IngestResult):
            b = result.bundle
            log.info(
                "ingestion.completed",
                document_id=b.document.id,
                chunks=len(b.chunks),
                entities=len(b.entities),
                relations=len(b.relations),
                **bound,
            )
            await self._tracker.advance(
                job,
                Stage.COMPLETED,
                message=(
                    f"{len(b.chunks)} chunks, {len(b.entities)} entities, "
                    f"{len(b.relations)} relations"
                ),
            )
            return True
        if isinstance(result, KGError) and result.retryable and not final:
            log.warning("ingestion.retry_later", error=result.message, **bound)
            return False
        message = (
            result.message
            if isinstance(result, KGError)
            else (f"could not process the document: {type(result).__name__}: {result}")
        )
        log.warning("ingestion.failed", error=message, exc_info=result, **bound)
        await self._tracker.advance(job, Stage.FAILED, error=message)
        return True

    async def _recreate_job(self, request: IngestionRequest) -> IngestionJob:
        """A request whose job record was lost (or has expired): record it again."""
        job = self._tracker.new_job(request.job_id, request.document_id)
        await self._jobs.create(job, request)
        return job
