"""Subscription root: live ingestion progress."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from graphql_schema.context import Info
from graphql_schema.types import IngestionEvent


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The job's current state, then each step; ends after COMPLETED or FAILED."
    )
    async def ingestion_progress(
        self, info: Info, job_id: strawberry.ID
    ) -> AsyncGenerator[IngestionEvent, None]:
        async for event in info.context.services.ingestion.progress(job_id):
            yield IngestionEvent.of(event)

    @strawberry.subscription(description="Every step of every job, from now on.")
    async def ingestion_events(self, info: Info) -> AsyncGenerator[IngestionEvent, None]:
        async for event in info.context.services.ingestion.all_events():
            yield IngestionEvent.of(event)
