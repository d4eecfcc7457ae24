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

    async def update(self, job: IngestionJob) -> None: ...

    async def get(self, ids: Sequence[str]) -> list[IngestionJob | None]: ...

    async def unfinished(self) -> list[IngestionRequest]:
        """Requests of jobs that are neither COMPLETED nor FAILED, oldest first."""
