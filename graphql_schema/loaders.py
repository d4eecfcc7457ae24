"""Per-request DataLoaders, one per edge, named ``<what>_by_<key>``.

Each batches every key one request asks for into one service call, so a nested query
costs a constant number of backend round trips whatever the size of its results. Paged
edges get one loader per page shape (first, offset), created on first use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from strawberry.dataloader import DataLoader

from app.domain.models import (
    Chunk,
    Direction,
    Document,
    Entity,
    Evidence,
    IngestionJob,
    Page,
    PageRequest,
    Relation,
)
from app.observability.metrics import record_dataloader_batch
from app.services.catalog import CatalogService
from app.services.ingestion import IngestionService

K = TypeVar("K")
V = TypeVar("V")


def _by_id(
    name: str, fetch: Callable[[Sequence[str]], Awaitable[list[V | None]]]
) -> DataLoader[str, V | None]:
    async def load(keys: list[str]) -> list[V | None]:
        record_dataloader_batch(name, len(keys))
        return await fetch(keys)

    return DataLoader(load_fn=load)


def _by_key(
    name: str, fetch: Callable[[Sequence[str]], Awaitable[dict[str, V]]], empty: Callable[[], V]
) -> DataLoader[str, V]:
    async def load(keys: list[str]) -> list[V]:
        record_dataloader_batch(name, len(keys))
        found = await fetch(keys)
        return [found.get(k) or empty() for k in keys]

    return DataLoader(load_fn=load)


def _empty_page() -> Page[object]:
    return Page(items=[], total=0)


class Loaders:
    def __init__(self, catalog: CatalogService, ingestion: IngestionService) -> None:
        self._catalog = catalog
        self._paged: dict[tuple[str, PageRequest, Direction | None], DataLoader[str, object]] = {}
        self.document_by_id = _by_id("document_by_id", catalog.documents)
        self.chunk_by_id = _by_id("chunk_by_id", catalog.chunks)
        self.entity_by_id = _by_id("entity_by_id", catalog.entities)
        self.relation_by_id = _by_id("relation_by_id", catalog.relations)
        self.job_by_id: DataLoader[str, IngestionJob | None] = _by_id("job_by_id", ingestion.jobs)
        self.entities_by_chunk: DataLoader[str, list[Entity]] = _by_key(
            "entities_by_chunk", catalog.entities_of_chunks, list
        )
        self.evidence_by_relation: DataLoader[str, list[Evidence]] = _by_key(
            "evidence_by_relation", catalog.evidence_of_relations, list
        )

    def _page_loader(
        self,
        name: str,
        page: PageRequest,
        direction: Direction | None,
        fetch: Callable[[Sequence[str]], Awaitable[dict[str, V]]],
    ) -> DataLoader[str, V]:
        key = (name, page, direction)
        loader = self._paged.get(key)
        if loader is None:
            loader = _by_key(name, fetch, _empty_page)  # type: ignore[arg-type]
            self._paged[key] = loader
        return loader  # type: ignore[return-value]

    def chunks_by_document(self, page: PageRequest) -> DataLoader[str, Page[Chunk]]:
        return self._page_loader(
            "chunks_by_document",
            page,
            None,
            lambda ids: self._catalog.chunks_of_documents(ids, page),
        )

    def entities_by_document(self, page: PageRequest) -> DataLoader[str, Page[Entity]]:
        return self._page_loader(
            "entities_by_document",
            page,
            None,
            lambda ids: self._catalog.entities_of_documents(ids, page),
        )

    def documents_by_entity(self, page: PageRequest) -> DataLoader[str, Page[Document]]:
        return self._page_loader(
            "documents_by_entity",
            page,
            None,
            lambda ids: self._catalog.documents_of_entities(ids, page),
        )

    def relations_by_entity(
        self, page: PageRequest, direction: Direction
    ) -> DataLoader[str, Page[Relation]]:
        return self._page_loader(
            "relations_by_entity",
            page,
            direction,
            lambda ids: self._catalog.relations_of_entities(ids, direction, page),
        )
