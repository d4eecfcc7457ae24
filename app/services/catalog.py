"""Reading the graph: documents, chunks, entities, relations and the edges between them.

Every method is batch-first, because the API's DataLoaders call them with all the keys
of one request at once; the walks (``neighborhood``, ``path``) start from one entity.
Paging and walk arguments are checked here, against the limits.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.config import LimitSettings
from app.domain.errors import BadInputError, NotFoundError
from app.domain.ids import Kind, kind_of
from app.domain.models import (
    Chunk,
    Direction,
    Document,
    DocumentFilter,
    Entity,
    EntityFilter,
    Evidence,
    GraphPath,
    GraphStats,
    Page,
    PageRequest,
    Relation,
    RelationFilter,
    Subgraph,
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

    # --- walks ------------------------------------------------------------------------

    async def neighborhood(self, entity_id: str, depth: int, limit: int) -> Subgraph:
        """The entity and those within ``depth`` hops, at most ``limit`` (see
        ``GraphStore.neighborhood``); NotFoundError if there is no such entity."""
        _check_entity_id("entityId", entity_id)
        _check_within("depth", depth, self._limits.max_depth, "KG_LIMITS__MAX_DEPTH")
        _check_within("limit", limit, self._limits.max_neighborhood, "KG_LIMITS__MAX_NEIGHBORHOOD")
        found = await self._graph.neighborhood(entity_id, depth, limit)
        if found is None:
            raise NotFoundError(f"no entity has the id {entity_id!r}")
        return found

    async def path(self, from_id: str, to_id: str, max_hops: int) -> GraphPath | None:
        """A shortest path of at most ``max_hops`` (see ``GraphStore.shortest_path``), or
        ``None`` if there is none; NotFoundError if an end is not an entity."""
        _check_entity_id("fromId", from_id)
        _check_entity_id("toId", to_id)
        _check_within("maxHops", max_hops, self._limits.max_path_hops, "KG_LIMITS__MAX_PATH_HOPS")
        found = await self._graph.shortest_path(from_id, to_id, max_hops)
        if found is None:
            # Only now tell "no path" from "no such entity": one more read, on misses only.
            ends = await self._graph.get_entities([from_id, to_id])
            for name, any_id, end in zip(("fromId", "toId"), (from_id, to_id), ends, strict=True):
                if end is None:
                    raise NotFoundError(f"{name}: no entity has the id {any_id!r}")
        return found


def _check_entity_id(name: str, any_id: str) -> None:
    if kind_of(any_id) is not Kind.ENTITY:
        raise BadInputError(f"{name} must be an entity id (ent_...), got {any_id!r}")


def _check_within(name: str, value: int, limit: int, variable: str) -> None:
    if value < 1:
        raise BadInputError(f"{name} must be at least 1, got {value}")
    if value > limit:
        raise BadInputError(f"{name} is {value}, over the limit of {limit} ({variable})")
