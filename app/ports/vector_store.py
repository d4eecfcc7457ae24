"""VectorStore: one normalised vector per chunk, searched by cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.domain.models import ChunkFilter, ChunkHit, VectorPoint

# Capabilities a vector store may declare.
FILTER_DOCUMENTS = "filter_documents"
FILTER_ENTITY_TYPES = "filter_entity_types"


class VectorStore(Protocol):
    capabilities: frozenset[str]

    async def start(self, dimension: int) -> None:
        """Open the store and create the collection for ``dimension`` (idempotent).
        A store with another dimension is a ConfigurationError."""

    async def close(self) -> None: ...

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        """Insert or replace points; the point id derives from the chunk id."""

    async def delete_documents(self, document_ids: Sequence[str]) -> None: ...

    async def search(self, vector: Sequence[float], k: int, filter: ChunkFilter) -> list[ChunkHit]:
        """The ``k`` nearest chunks, best first; score is cosine similarity in [-1, 1].
        The filter is applied inside the store, before the top ``k`` is taken."""

    async def count(self) -> int: ...
