"""GraphStore: documents, chunks, entities, mentions, relations and their evidence.

Batch-first: every read takes many keys and answers them in one round trip, which is
what the API's DataLoaders call. Results of ``get_*`` follow the order of the ids asked,
``None`` where an id is unknown. Per-key pages (``*_of_*``) return an entry for every key
asked, an empty ``Page`` where there is nothing.

Orders (stable, so offset cursors are stable):
- documents: ``ingested_at`` descending, then id;
- chunks: ``index`` ascending;
- entities: ``mention_count`` descending, then name, then id;
- documents of an entity: ``ingested_at`` descending, then id;
- relations: ``confidence`` descending, then id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.domain.models import (
    Chunk,
    ChunkFilter,
    ChunkHit,
    DeletedDocument,
    Direction,
    Document,
    DocumentBundle,
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

# Capabilities a graph store may declare.
KEYWORD_SEARCH = "keyword_search"
TRANSACTIONS = "transactions"


class GraphStore(Protocol):
    capabilities: frozenset[str]

    async def start(self) -> None:
        """Open connections and create or migrate the schema (idempotent)."""

    async def close(self) -> None: ...

    # --- writes -----------------------------------------------------------------------
    async def write_document(self, bundle: DocumentBundle) -> None:
        """Store a whole document in one transaction. Idempotent: a replay changes nothing.

        Entities merge by id across documents; relations merge by id. Merges do not
        depend on the order documents arrive in (workers store them in any order): an
        entity keeps its longest name (among equals the smallest in code point order).
        Aliases, mention counts and relation confidence (the best evidence's) are derived
        from stored mentions and evidence, so they stay right after replays and deletes.
        """

    async def delete_document(self, document_id: str) -> DeletedDocument | None:
        """Remove a document, its chunks, mentions and evidence, and the entities and
        relations no longer supported by any document. ``None`` if it did not exist."""

    # --- point reads ------------------------------------------------------------------
    async def get_documents(self, ids: Sequence[str]) -> list[Document | None]: ...

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk | None]: ...

    async def get_entities(self, ids: Sequence[str]) -> list[Entity | None]: ...

    async def get_relations(self, ids: Sequence[str]) -> list[Relation | None]: ...

    # --- lists ------------------------------------------------------------------------
    async def list_documents(self, filter: DocumentFilter, page: PageRequest) -> Page[Document]: ...

    async def list_entities(self, filter: EntityFilter, page: PageRequest) -> Page[Entity]: ...

    async def list_relations(self, filter: RelationFilter, page: PageRequest) -> Page[Relation]: ...

    # --- edges, batched by key ----------------------------------------------------------
    async def chunks_of_documents(
        self, document_ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Chunk]]: ...

    async def entities_of_documents(
        self, document_ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Entity]]: ...

    async def entities_of_chunks(self, chunk_ids: Sequence[str]) -> dict[str, list[Entity]]:
        """Distinct entities mentioned in each chunk, in order of first mention."""

    async def documents_of_entities(
        self, entity_ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Document]]: ...

    async def relations_of_entities(
        self, entity_ids: Sequence[str], direction: Direction, page: PageRequest
    ) -> dict[str, Page[Relation]]: ...

    async def evidence_of_relations(self, relation_ids: Sequence[str]) -> dict[str, list[Evidence]]:
        """Evidence per relation, best confidence first."""

    # --- search and counts ------------------------------------------------------------
    async def keyword_search(self, query: str, k: int, filter: ChunkFilter) -> list[ChunkHit]:
        """Full-text search over chunk text, best first; scores are positive, higher is
        better (BM25-style). The query is plain words, never the store's query syntax."""

    async def stats(self) -> GraphStats: ...
