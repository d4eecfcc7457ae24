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
    GraphPath,
    GraphStats,
    Page,
    PageRequest,
    Relation,
    RelationFilter,
    Subgraph,
)

# Capabilities a graph store may declare.
KEYWORD_SEARCH = "keyword_search"
TRANSACTIONS = "transactions"

# The most entities a ``shortest_path`` search may reach before it gives up.
PATH_SEARCH_MAX_ENTITIES = 10_000


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

    async def search_entities(self, words: Sequence[str], k: int) -> list[Entity]:
        """Entities whose name or an alias holds one of ``words`` as a whole word (case
        and accents folded, the word definition of ``keyword_search``), at most ``k``:
        most distinct words matched first, then ``mention_count`` descending, then id.
        Words are plain words, never the store's query syntax; none gives none. This
        finds candidates; the caller judges how well each name fits."""

    async def stats(self) -> GraphStats: ...

    async def version(self) -> int:
        """A number that changes (grows) with every committed ``write_document`` and
        every ``delete_document`` that removed something, seen by every process that
        shares the store: what cached answers are keyed by, so none outlives a change."""

    # --- walks ------------------------------------------------------------------------
    # Both walk relations in either direction, breadth first, one batched read per hop
    # (never one per entity). A step from the entities at hop ``k`` reaches the entities
    # not seen yet (hop ``k + 1``); each such entity's *link* is the best relation joining
    # it to an entity at hop ``k``: highest ``confidence``, then smallest relation id.
    # Entities of one hop rank by their link's confidence (descending), then entity id.
    # Every store applies these rules, so all of them answer the same.

    async def neighborhood(self, entity_id: str, depth: int, limit: int) -> Subgraph | None:
        """The entity and every entity within ``depth`` hops of it, at most ``limit`` in
        all (the entity itself included); ``None`` if there is no such entity.

        Entities come nearest first: the entity, then hop 1, hop 2..., each hop in the
        rank order above. A hop that would pass ``limit`` keeps only its best-ranked
        entities that fit, and the walk stops there. Relations are every relation whose
        two ends are both among the entities returned (self-loops included),
        ``confidence`` descending, then id. ``depth`` 0 gives the entity alone with its self-loops.
        ``depth`` below 0 or ``limit`` below 1 is a ``BadInputError``.
        """

    async def shortest_path(self, from_id: str, to_id: str, max_hops: int) -> GraphPath | None:
        """A path of fewest relations (ignoring their direction) from ``from_id`` to
        ``to_id``, at most ``max_hops`` long; ``None`` if there is none, or if either
        entity does not exist. ``from_id == to_id`` gives the entity alone (length 0).

        Among paths of equal length the one returned is fixed by the links above: the
        path ends with ``to_id``'s link, whose other end's link comes before it, and so
        on back to ``from_id``. That is, walking back from ``to_id``, each step takes the
        best relation (highest confidence, then smallest id) to an entity one hop nearer
        ``from_id``. ``max_hops`` below 0 is a ``BadInputError``. The search reads
        whole hops; when the entities reached up to the hop that finds ``to_id`` (or up
        to ``max_hops``) would pass ``PATH_SEARCH_MAX_ENTITIES``, it is a
        ``QueryTooComplexError``.
        """
