"""Reading the graph: documents, chunks, entities, relations and the edges between them.

Every method is batch-first, because the API's DataLoaders call them with all the keys
of one request at once. Paging arguments are checked here, against the limits.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.config import LimitSettings
from app.domain.models import (
    Chunk,
    Direction,
    Document,
    DocumentFilter,
    Entity,
    EntityFilter,
    Evidence,
    GraphStats,
    Page,
    PageRequest,
    Relation,
    RelationFilter,
)
from app.ports.graph_store import GraphStore
from app.services.validation import check_page


class CatalogService:
    def __init__(self, graph: GraphStore, limits: LimitSettings) -> None:
        self._graph = graph
        self._limits = limits

    def page(self, first: int, offset: int) -> PageRequest:
        return check_page(first, offset, self._limits)

    async def documents(self, ids: Sequence[str]) -> list[Document | None]:
        return await self._graph.get_documents(ids)

    async def chunks(self, ids: Sequence[str]) -> list[Chunk | None]:
        return await self._graph.get_chunks(ids)

    async def entities(self, ids: Sequence[str]) -> list[Entity | None]:
        return await self._graph.get_entities(ids)

    async def relations(self, ids: Sequence[str]) -> list[Relation | None]:
        return await self._graph.get_relations(ids)

    async def list_documents(self, filter: DocumentFilter, page: PageRequest) -> Page[Document]:
        return await self._graph.list_documents(filter, page)

    async def list_entities(self, filter: EntityFilter, page: PageRequest) -> Page[Entity]:
        return await self._graph.list_entities(filter, page)

    async def list_relations(self, filter: RelationFilter, page: PageRequest) -> Page[Relation]:
        return await self._graph.list_relations(filter, page)

    async def chunks_of_documents(
        self, ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Chunk]]:
        return await self._graph.chunks_of_documents(ids, page)

    async def entities_of_documents(
        self, ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Entity]]:
        return await self._graph.entities_of_documents(ids, page)

    async def entities_of_chunks(self, ids: Sequence[str]) -> dict[str, list[Entity]]:
        return await self._graph.entities_of_chunks(ids)

    async def documents_of_entities(
        self, ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Document]]:
        return await self._graph.documents_of_entities(ids, page)

    async def relations_of_entities(
        self, ids: Sequence[str], direction: Direction, page: PageRequest
    ) -> dict[str, Page[Relation]]:
        return await self._graph.relations_of_entities(ids, direction, page)

    async def evidence_of_relations(self, ids: Sequence[str]) -> dict[str, list[Evidence]]:
        return await self._graph.evidence_of_relations(ids)

    async def stats(self) -> GraphStats:
        return await self._graph.stats()
