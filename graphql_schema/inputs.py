"""Input types and their conversion to domain values."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from app.domain import models
from app.domain.errors import BadInputError


@strawberry.input
class DocumentInput:
    title: str
    text: str
    source: str | None = None
    published_at: datetime | None = None
    metadata: JSON | None = None

    def to_domain(self) -> models.DocumentInput:
        if self.metadata is not None and not isinstance(self.metadata, dict):
            raise BadInputError("metadata must be a JSON object")
        return models.DocumentInput(
            title=self.title,
            text=self.text,
            source=self.source,
            published_at=self.published_at,
            metadata=self.metadata,
        )


@strawberry.input
class DocumentFilter:
    source: str | None = None
    title_contains: str | None = None
    ingested_after: datetime | None = None

    def to_domain(self) -> models.DocumentFilter:
        return models.DocumentFilter(
            source=self.source,
            title_contains=self.title_contains,
            ingested_after=self.ingested_after,
        )


@strawberry.input
class EntityFilter:
    type: str | None = None
    name_contains: str | None = None

    def to_domain(self) -> models.EntityFilter:
        return models.EntityFilter(type=self.type, name_contains=self.name_contains)


@strawberry.input
class RelationFilter:
    type: str | None = None
    source_id: strawberry.ID | None = None
    target_id: strawberry.ID | None = None

    def to_domain(self) -> models.RelationFilter:
        return models.RelationFilter(
            type=self.type, source_id=self.source_id, target_id=self.target_id
        )


@strawberry.input
class SearchFilter:
    document_ids: list[strawberry.ID] | None = None
    entity_types: list[str] | None = None

    def to_domain(self) -> models.ChunkFilter:
        return models.ChunkFilter(
            document_ids=tuple(self.document_ids) if self.document_ids is not None else None,
            entity_types=tuple(self.entity_types) if self.entity_types is not None else None,
        )
