"""JobStore: ingestion jobs, readable from any API process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.domain.models import IngestionJob, IngestionRequest


class JobStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def create(self, job: IngestionJob, request: IngestionRequest | None) -> None:
        """Record a new job with the request that will run it (kept until the job ends,
        so unfinished work can be resumed after a restart)."""

    async def update(self, job: IngestionJob) -> bool:
        """Record the job's new state, unless the stored job is already past it: a
        finished job is final and a stage never goes back (after a rebalance two workers
        may hold the same request). Returns whether it was recorded; NotFoundError
        when there is no such job. Atomic: the check and the write are one step."""

    async def get(self, ids: Sequence[str]) -> list[IngestionJob | None]: ...

    async def unfinished(self) -> list[IngestionRequest]:
        """Requests of jobs that are neither COMPLETED nor FAILED, oldest first."""
