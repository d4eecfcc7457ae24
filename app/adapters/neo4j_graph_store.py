"""GraphStore on a Neo4j 5.26+ server (``KG_GRAPH_URL=bolt://`` or ``neo4j://``).

The data model and every statement are in ``neo4j_cypher``. Writes run in managed
transactions (``execute_write``), so the driver retries transient failures (deadlocks,
leader switches, lost connections) with back-off; each attempt re-runs the whole
transaction function, which only reads and writes inside its transaction. Reads run
through ``execute_query`` with read routing; writes share its bookmark manager, so a
read issued after a write sees it, on a cluster too.

``write_document`` and ``delete_document`` are one transaction each; what they do, and
how locks keep derived fields exact under concurrent writers, is in
``neo4j_graph_writes``. The driver comes from a ``Neo4jConnection``, which may be shared
with the vector store, or borrowed around a driver the caller owns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from typing import Any, TypeVar

import neo4j
import structlog

from app.adapters import graph_walks
from app.adapters import neo4j_cypher as cy
from app.adapters.bundle_validation import validate_bundle
from app.adapters.neo4j_connection import Neo4jConnection
from app.adapters.neo4j_graph_walks import Neo4jWalkReads
from app.adapters.neo4j_graph_writes import (
    WritePlan,
    delete_document,
    entity_words,
    write_bundle,
)
from app.adapters.neo4j_support import (
    decode_optional_json,
    decode_optional_time,
    decode_time,
    encode_optional_time,
    lucene_escape,
    lucene_query,
    neo4j_error,
)
from app.adapters.search_checks import entity_search_terms, matches_nothing
from app.adapters.search_words import index_text
from app.domain.errors import (
    BackendError,
    BadInputError,
    ConfigurationError,
    UnavailableError,
)
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
from app.ports.graph_store import KEYWORD_SEARCH, TRANSACTIONS

log = structlog.get_logger(__name__)

T = TypeVar("T")
Row = Mapping[str, Any]
Tx = neo4j.AsyncManagedTransaction

# Schema rules another process created at the same moment as ours.
_ALREADY_EXISTS = (
    "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
    "Neo.ClientError.Schema.IndexAlreadyExists",
    "Neo.ClientError.Schema.ConstraintAlreadyExists",
)
_MIN_VERSION = (5, 23)  # CALL (x) { ... } subqueries


class Neo4jGraphStore:
    """The graph in the database of ``connection``: a ``Neo4jConnection`` to a server
    (URL, credentials, pool and timeouts), which the vector store may share, or one
    borrowed around a driver the caller owns (``close`` leaves that open)."""

    capabilities: frozenset[str] = frozenset({KEYWORD_SEARCH, TRANSACTIONS})

    def __init__(self, connection: Neo4jConnection) -> None:
        self._connection = connection
        self.where = connection.where
        self._database = connection.database
        self._timeout = connection.timeout
        self._driver: neo4j.AsyncDriver | None = None
        self._lock = asyncio.Lock()
        self._walks = Neo4jWalkReads(self._read, self.get_entities, _relation)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Check the server, create constraints and indexes (idempotent) and wait until
        they are online; a second call does nothing."""
        async with self._lock:
            if self._driver is not None:
                return
            driver = await self._connection.acquire()
            try:
                await self._check_version(driver)
                await self._create_schema(driver)
            except BaseException:
                await self._connection.abandon()  # keeps the cause
                raise
            self._driver = driver

    async def close(self) -> None:
        async with self._lock:
            driver, self._driver = self._driver, None
            if driver is not None:
                await self._connection.release()

    async def _check_version(self, driver: neo4j.AsyncDriver) -> None:
        with self._translated("connecting"):
            records = (await driver.execute_query(cy.SERVER_VERSION, database_=self._database))[0]
        version = str(records[0]["version"]) if records else "unknown"
        try:
            found = tuple(int(part) for part in version.split(".")[:2])
        except ValueError:
            found = ()
        if found < _MIN_VERSION:
            raise ConfigurationError(
                f"Neo4j at {self.where} is version {version}; this store needs "
                f"{'.'.join(map(str, _MIN_VERSION))} or later"
            )

    async def _create_schema(self, driver: neo4j.AsyncDriver) -> None:
        secret = self._connection.secret
        for name, statement in cy.SCHEMA:
            try:
                await driver.execute_query(statement, database_=self._database)
            except neo4j.exceptions.ClientError as exc:
                if exc.code not in _ALREADY_EXISTS:
                    raise neo4j_error(exc, f"creating {name}", self.where, secret) from exc
            except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError) as exc:
                raise neo4j_error(exc, f"creating {name}", self.where, secret) from exc
        names = [name for name, _ in cy.SCHEMA]
        with self._translated("waiting for indexes"):
            # Timed out, or an index failed: the states read next say which.
            with suppress(neo4j.exceptions.ClientError):
                await driver.execute_query(
                    cy.AWAIT_INDEXES,
                    {"seconds": max(1, int(self._timeout))},
                    database_=self._database,
                )
            records = (
                await driver.execute_query(
                    cy.INDEX_STATES, {"names": names}, database_=self._database
                )
            )[0]
        for record in records:
            state, name = record["state"], record["name"]
            if state == "FAILED":
                raise BackendError(
                    f"Neo4j index {name} failed: {record['failureMessage'] or 'no reason given'}"
                )
            if state != "ONLINE":
                raise UnavailableError(f"Neo4j index {name} is still {state}; try again later")
        await self._upgrade(driver)

    async def _upgrade(self, driver: neo4j.AsyncDriver) -> None:
        """A graph an earlier version wrote (it still has a retired index): give its
        chunks and entities their search words, then drop the retired indexes, in that
        order, so a start that dies halfway does it again. A current graph pays one
        index lookup."""
        with self._translated("looking for retired indexes"):
            records = (
                await driver.execute_query(
                    cy.INDEX_STATES, {"names": list(cy.RETIRED_INDEXES)}, database_=self._database
                )
            )[0]
        retired = [str(r["name"]) for r in records]
        if not retired:
            return
        await self._fill_in_words(driver)
        for name in retired:
            with self._translated(f"dropping the retired index {name}"):
                await driver.execute_query(cy.DROP_INDEX.format(name), database_=self._database)

    async def _fill_in_words(self, driver: neo4j.AsyncDriver) -> None:
        """Give chunks and entities stored before ``words`` existed their search words."""
        chunks = await self._fill_in(
            driver,
            cy.CHUNKS_WITHOUT_WORDS,
            cy.SET_CHUNK_WORDS,
            lambda r: index_text(r["text"] or ""),
            "chunks",
        )
        entities = await self._fill_in(
            driver,
            cy.ENTITIES_WITHOUT_WORDS,
            cy.SET_ENTITY_WORDS,
            lambda r: entity_words(r["name"] or "", r["aliases"]),
            "entities",
        )
        if chunks or entities:
            log.info(
                "graph_store.search_words_filled_in",
                chunks=chunks,
                entities=entities,
                at=self.where,
            )

    async def _fill_in(
        self,
        driver: neo4j.AsyncDriver,
        without: str,
        store: str,
        words_of: Callable[[neo4j.Record], str],
        what: str,
    ) -> int:
        """Give the nodes ``without`` finds the words ``words_of`` makes, a thousand at
        a time; return how many."""
        filled = 0
        while True:
            with self._translated(f"reading {what} without search words"):
                records = (
                    await driver.execute_query(without, {"limit": 1000}, database_=self._database)
                )[0]
            if not records:
                return filled
            rows = [{"id": r["id"], "words": words_of(r)} for r in records]
            with self._translated(f"storing the search words of {what}"):
                await driver.execute_query(store, {"rows": rows}, database_=self._database)
            filled += len(rows)

    # --- writes -------------------------------------------------------------------------

    async def write_document(self, bundle: DocumentBundle) -> None:
        validate_bundle(bundle)
        plan = WritePlan.of(bundle)
        await self._write(lambda tx: write_bundle(tx, plan), "writing a document")

    async def delete_document(self, document_id: str) -> DeletedDocument | None:
        return await self._write(lambda tx: delete_document(tx, document_id), "deleting a document")

    async def _write(self, work: Callable[[Tx], Awaitable[T]], action: str) -> T:
        driver = self._started()
        with self._translated(action):
            async with driver.session(
                database=self._database,
                bookmark_manager=driver.execute_query_bookmark_manager,
            ) as session:
                return await session.execute_write(neo4j.unit_of_work(timeout=self._timeout)(work))

    # --- point reads --------------------------------------------------------------------

    async def get_documents(self, ids: Sequence[str]) -> list[Document | None]:
        return await self._get(ids, cy.GET_DOCUMENTS, _document, "reading documents")

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk | None]:
        return await self._get(ids, cy.GET_CHUNKS, _chunk, "reading chunks")

    async def get_entities(self, ids: Sequence[str]) -> list[Entity | None]:
        return await self._get(ids, cy.GET_ENTITIES, _entity, "reading entities")

    async def get_relations(self, ids: Sequence[str]) -> list[Relation | None]:
        return await self._get(ids, cy.GET_RELATIONS, _relation, "reading relations")

    async def _get(
        self, ids: Sequence[str], query: str, build: Callable[[Row], T], action: str
    ) -> list[T | None]:
        if not ids:
            return []
        records = await self._read(query, {"ids": list(dict.fromkeys(ids))}, action)
        found = {r["item"]["id"]: build(r["item"]) for r in records}
        return [found.get(i) for i in ids]

    # --- lists --------------------------------------------------------------------------

    async def list_documents(self, filter: DocumentFilter, page: PageRequest) -> Page[Document]:
        terms = _terms(
            (cy.DOCUMENT_SOURCE, filter.source),
            (cy.DOCUMENT_TITLE, filter.title_contains),
            (cy.DOCUMENT_AFTER, filter.ingested_after),
        )
        params = {
            "source": filter.source,
            "title": _folded(filter.title_contains),
            "after": encode_optional_time(filter.ingested_after),
        }
        return await self._list(cy.list_documents(terms), params, page, _document)

    async def list_entities(self, filter: EntityFilter, page: PageRequest) -> Page[Entity]:
        terms = _terms((cy.ENTITY_TYPE, filter.type), (cy.ENTITY_NAME, filter.name_contains))
        params = {"type": filter.type, "name": _folded(filter.name_contains)}
        return await self._list(cy.list_entities(terms), params, page, _entity)

    async def list_relations(self, filter: RelationFilter, page: PageRequest) -> Page[Relation]:
        terms = _terms(
            (cy.RELATION_TYPE, filter.type),
            (cy.RELATION_SOURCE, filter.source_id),
            (cy.RELATION_TARGET, filter.target_id),
        )
        params = {"type": filter.type, "source": filter.source_id, "target": filter.target_id}
        return await self._list(cy.list_relations(terms), params, page, _relation)

    async def _list(
        self, query: str, params: Row, page: PageRequest, build: Callable[[Row], T]
    ) -> Page[T]:
        _check_page(page)
        params = {**params, "offset": page.offset, "limit": page.limit}
        (record,) = await self._read(query, params, "listing")
        return Page(items=[build(item) for item in record["items"]], total=record["total"])

    # --- edges, batched by key ------------------------------------------------------------

    async def chunks_of_documents(
        self, document_ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Chunk]]:
        return await self._keyed_pages(cy.CHUNKS_OF_DOCUMENTS, {}, document_ids, page, _chunk)

    async def entities_of_documents(
        self, document_ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Entity]]:
        return await self._keyed_pages(cy.ENTITIES_OF_DOCUMENTS, {}, document_ids, page, _entity)

    async def entities_of_chunks(self, chunk_ids: Sequence[str]) -> dict[str, list[Entity]]:
        result: dict[str, list[Entity]] = {i: [] for i in chunk_ids}
        if chunk_ids:
            params = {"keys": list(result)}
            for r in await self._read(cy.ENTITIES_OF_CHUNKS, params, "reading entities"):
                result[r["key"]].append(_entity(r["item"]))
        return result

    async def documents_of_entities(
        self, entity_ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Document]]:
        return await self._keyed_pages(cy.DOCUMENTS_OF_ENTITIES, {}, entity_ids, page, _document)

    async def relations_of_entities(
        self, entity_ids: Sequence[str], direction: Direction, page: PageRequest
    ) -> dict[str, Page[Relation]]:
        params = {
            "outgoing": direction in (Direction.OUT, Direction.BOTH),
            "incoming": direction in (Direction.IN, Direction.BOTH),
        }
        return await self._keyed_pages(
            cy.RELATIONS_OF_ENTITIES, params, entity_ids, page, _relation
        )

    async def evidence_of_relations(self, relation_ids: Sequence[str]) -> dict[str, list[Evidence]]:
        result: dict[str, list[Evidence]] = {i: [] for i in relation_ids}
        if relation_ids:
            params = {"keys": list(result)}
            for r in await self._read(cy.EVIDENCE_OF_RELATIONS, params, "reading evidence"):
                result[r["key"]].append(
                    Evidence(
                        relation_id=r["key"],
                        document_id=r["document_id"],
                        chunk_id=r["chunk_id"],
                        text=r["text"],
                        confidence=r["confidence"],
                    )
                )
        return result

    async def _keyed_pages(
        self,
        query: str,
        params: Row,
        keys: Sequence[str],
        page: PageRequest,
        build: Callable[[Row], T],
    ) -> dict[str, Page[T]]:
        """One statement for all keys; every key asked gets a page."""
        _check_page(page)
        if not keys:
            return {}
        unique = list(dict.fromkeys(keys))
        params = {**params, "keys": unique, "offset": page.offset, "limit": page.limit}
        pages = {
            r["key"]: Page(items=[build(item) for item in r["items"]], total=r["total"])
            for r in await self._read(query, params, "paging")
        }
        return {k: pages.get(k, Page(items=[], total=0)) for k in unique}

    # --- search and counts --------------------------------------------------------------

    async def keyword_search(self, query: str, k: int, filter: ChunkFilter) -> list[ChunkHit]:
        lucene = lucene_query(query)
        if matches_nothing(k, filter) or lucene is None:
            return []
        params = {
            "query": lucene,
            "k": k,
            "documents": None if filter.document_ids is None else list(filter.document_ids),
            "types": None if filter.entity_types is None else list(filter.entity_types),
        }
        records = await self._read(cy.KEYWORD_SEARCH, params, "searching chunk text")
        return [
            ChunkHit(chunk_id=r["chunk_id"], document_id=r["document_id"], score=r["score"])
            for r in records
        ]

    async def search_entities(self, words: Sequence[str], k: int) -> list[Entity]:
        terms = entity_search_terms(words, k)
        if not terms:
            return []
        # Each word a quoted, escaped term: no Lucene operator, field or wildcard.
        params = {"words": [f'"{lucene_escape(word)}"' for word in terms], "k": k}
        records = await self._read(cy.SEARCH_ENTITIES, params, "searching entity names")
        return [_entity(r["item"]) for r in records]

    async def version(self) -> int:
        (r,) = await self._read(cy.GRAPH_VERSION, {}, "reading the graph version")
        return int(r["version"])

    async def stats(self) -> GraphStats:
        (r,) = await self._read(cy.STATS, {}, "counting")
        return GraphStats(
            documents=r["documents"],
            chunks=r["chunks"],
            entities=r["entities"],
            relations=r["relations"],
        )

    # --- walks (graph_walks holds the algorithm, neo4j_graph_walks its reads) ------------

    async def neighborhood(self, entity_id: str, depth: int, limit: int) -> Subgraph | None:
        return await graph_walks.neighborhood(self._walks, entity_id, depth, limit)

    async def shortest_path(self, from_id: str, to_id: str, max_hops: int) -> GraphPath | None:
        return await graph_walks.shortest_path(self._walks, from_id, to_id, max_hops)

    # --- plumbing -----------------------------------------------------------------------

    async def _read(self, query: str, params: Row, action: str) -> list[neo4j.Record]:
        driver = self._started()
        with self._translated(action):
            result = await driver.execute_query(
                neo4j.Query(query, timeout=self._timeout),
                dict(params),
                routing_=neo4j.RoutingControl.READ,
                database_=self._database,
            )
        return list(result.records)

    def _started(self) -> neo4j.AsyncDriver:
        if self._driver is None:
            raise UnavailableError("the Neo4j graph store is not started")
        return self._driver

    def _translated(self, action: str) -> AbstractContextManager[None]:
        return self._connection.translated(action)


# --- records --------------------------------------------------------------------------


def _document(m: Row) -> Document:
    return Document(
        id=m["id"],
        title=m["title"],
        text=m["text"],
        source=m["source"],
        published_at=decode_optional_time(m["published_at"]),
        ingested_at=decode_time(m["ingested_at"]),
        metadata=decode_optional_json(m["metadata"]),
        chunk_count=m["chunk_count"],
    )


def _chunk(m: Row) -> Chunk:
    return Chunk(
        id=m["id"],
        document_id=m["document_id"],
        index=m["index"],
        text=m["text"],
        start=m["start"],
        end=m["end"],
        token_count=m["token_count"],
    )


def _entity(m: Row) -> Entity:
    return Entity(
        id=m["id"],
        key=m["key"],
        name=m["name"],
        type=m["type"],
        aliases=tuple(sorted(m["aliases"] or ())),
        mention_count=m["mention_count"],
    )


def _relation(m: Row) -> Relation:
    return Relation(
        id=m["id"],
        type=m["type"],
        source_id=m["source_id"],
        target_id=m["target_id"],
        confidence=m["confidence"],
    )


def _terms(*pairs: tuple[str, object]) -> tuple[str, ...]:
    """The WHERE terms (constants of ``neo4j_cypher``) of the filters that are set."""
    return tuple(term for term, value in pairs if value is not None)


def _check_page(page: PageRequest) -> None:
    if page.offset < 0 or page.limit < 0:
        raise BadInputError(f"offset and limit must not be negative, got {page}")


def _folded(text: str | None) -> str | None:
    return None if text is None else text.casefold()
