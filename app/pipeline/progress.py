"""Job progress: one place that moves a job to a stage, stores it and tells subscribers.

The job store is written before the event is published, so a subscriber that reads the
job after seeing an event never sees an older state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import structlog

from app.domain.models import IngestionEvent, IngestionJob, JobStatus, Stage
from app.ports.event_bus import EventBus
from app.ports.job_store import JobStore

log = structlog.get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def status_of(stage: Stage) -> JobStatus:
    if stage is Stage.QUEUED:
        return JobStatus.QUEUED
    if stage is Stage.COMPLETED:
        return JobStatus.COMPLETED
    if stage is Stage.FAILED:
        return JobStatus.FAILED
    return JobStatus.RUNNING


def event_of(job: IngestionJob, message: str | None = None) -> IngestionEvent:
    return IngestionEvent(
        job_id=job.id,
        status=job.status,
        stage=job.stage,
        progress=job.progress,
        at=job.finished_at or utcnow(),
        message=message if message is not None else job.error,
        document_id=job.document_id,
    )


class JobTracker:
    def __init__(
        self, jobs: JobStore, bus: EventBus, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._jobs = jobs
        self._bus = bus
        self._clock = clock

    def new_job(self, job_id: str, document_id: str) -> IngestionJob:
        return IngestionJob(
            id=job_id,
            status=JobStatus.QUEUED,
            stage=Stage.QUEUED,
            progress=0.0,
            document_id=document_id,
            error=None,
            created_at=self._clock(),
        )

    async def announce(self, job: IngestionJob, message: str | None = None) -> None:
        """Publish the job's current state as an event."""
        await self._bus.publish_event(event_of(job, message))

    async def advance(
        self,
        job: IngestionJob,
        stage: Stage,
        *,
        message: str | None = None,
        error: str | None = None,
    ) -> IngestionJob:
        status = status_of(stage)
        moved = replace(
            job,
            status=status,
            stage=stage,
            progress=stage.progress,
            error=error,
            finished_at=self._clock() if status.finished else None,
        )
        if await self._jobs.update(moved):
            await self.announce(moved, message)
        else:  # another worker took the job further (a redelivered request): say nothing
            log.info("ingestion.stale_progress_ignored", job_id=job.id, stage=stage.value)
        return moved
