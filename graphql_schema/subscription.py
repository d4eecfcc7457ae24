"""Subscription root: live ingestion progress and streamed answers (readers)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from app.domain import models
from graphql_schema.context import Info
from graphql_schema.enums import AskMode
from graphql_schema.permissions import IsReader
from graphql_schema.types import Answer, AnswerChunk, IngestionEvent


@strawberry.type
class Subscription:
    @strawberry.subscription(
        permission_classes=[IsReader],
        description="The job's current state, then each step; ends after COMPLETED or FAILED.",
    )
    async def ingestion_progress(
        self, info: Info, job_id: strawberry.ID
    ) -> AsyncGenerator[IngestionEvent, None]:
        async for event in info.context.services.ingestion.progress(job_id):
            yield IngestionEvent.of(event)

    @strawberry.subscription(
        permission_classes=[IsReader], description="Every step of every job, from now on."
    )
    async def ingestion_events(self, info: Info) -> AsyncGenerator[IngestionEvent, None]:
        async for event in info.context.services.ingestion.all_events():
            yield IngestionEvent.of(event)

    @strawberry.subscription(
        permission_classes=[IsReader],
        description="ask, streamed: the answer's text as it is generated, then a last "
        "chunk with done and the whole Answer.",
    )
    async def ask_stream(
        self,
        info: Info,
        question: str,
        k: int | None = 5,
        mode: AskMode | None = models.AskMode.HYBRID,
    ) -> AsyncGenerator[AnswerChunk, None]:
        stream = info.context.services.answers.ask_stream(
            question, 5 if k is None else k, models.AskMode(mode or models.AskMode.HYBRID)
        )
        async for item in stream:
            if isinstance(item, models.Answer):
                yield AnswerChunk(delta="", done=True, answer=Answer.of(item))
            else:
                yield AnswerChunk(delta=item, done=False)
