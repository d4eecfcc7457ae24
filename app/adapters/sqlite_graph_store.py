"""GraphStore on one SQLite file: the embedded default (``KG_GRAPH_URL=sqlite://``).

Connections: a writer, whose transactions are serialised by a lock (one
``BEGIN IMMEDIATE`` transaction per document write or delete), and ``readers``
query-only ones (two by default), each on its own thread. A read goes to the reader
with the fewest reads in flight, so the reads one request runs at once (ask's walks and
lookups) or two requests run side by side use both cores: SQLite lets go of the GIL
while it steps. In WAL mode a reader sees the last committed state, never a write in
progress, so reads do not wait for writes. Every read is a single statement, so it is
consistent on its own (a page and its total come from the same snapshot).

A keyword search is split by chunk seq into ranges, one per idle reader (each range at
least ``KEYWORD_PART_ROWS`` chunks), run side by side and merged: FTS5 computes bm25 for
every chunk that holds any of the words, which is most of a search's time when common
words match thousands of chunks, and a range's scores are the whole table's (bm25's
idf and average length are table-wide), so the best k of the parts' best k are exactly
the whole search's. A busy store (readers in flight) searches in one piece. Over a
store of more chunks than ``keyword_postings`` (``None``: never), a search first counts
the chunks of each word and scores only the candidates ``keyword_candidates`` picks
(the same scores, fewer chunks scored), in one statement; it searches again unpruned
(and split) when they are fewer than k.

Point reads (the graph version, and records by id, up to ``INLINE_MAX_KEYS`` ids) run
on the event loop's own thread, through one more query-only connection: an index lookup
takes tens of microseconds there, while the hop to a reader thread and back costs a few
hundred on a busy machine, and a search makes three such reads. That connection never
waits for a lock (``busy_timeout`` 0): a read it cannot do at once goes to a reader.

``write_document`` replaces what an earlier write of the same document stored: it
detaches the document's chunks, mentions and evidence, writes the bundle's, drops the
entities and relations nothing supports any more, and recomputes the derived fields
(entity mention counts and aliases, relation confidence) of everything it touched. A
replay therefore changes nothing, and a re-ingestion that yields fewer chunks leaves no
stale rows behind. The document keeps its first ``ingested_at``. Its last statement
raises the graph version (``version``), as does a delete that removed something.

Several processes may share the file (WAL plus ``busy_timeout``); when the lock cannot
be had in time the call fails with a retryable ``UnavailableError``.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from app.adapters import graph_walks
from app.adapters import sqlite_graph_sql as sql
from app.adapters.bundle_validation import validate_bundle
from app.adapters.keyword_candidates import KEYWORD_CANDIDATE_POSTINGS, candidate_words
from app.adapters.search_checks import entity_search_terms, matches_nothing
from app.adapters.search_words import query_words
from app.adapters.sqlite_graph_rows import (
    chunk_row,
    document_row,
    entity_row,
    evidence_row,
    fts_any,
    fts_string,
    relation_row,
)
from app.adapters.sqlite_schema import GRAPH_APPLICATION_ID, GRAPH_MIGRATIONS
from app.adapters.sqlite_support import (
    DEFAULT_BUSY_TIMEOUT_MS,
    encode_optional_json,
    error_from,
    id_list,
    is_busy,
    migrate,
    open_connection,
    open_inline_reader,
    translate_errors,
)
from app.adapters.stored_text import encode_optional_time, encode_time
from app.domain.errors import BadInputError, ConfigurationError, UnavailableError
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

T = TypeVar("T")

_MIN_ROWID, _MAX_ROWID = -(2**63), 2**63 - 1
NOT_STARTED = "the SQLite graph store is not started"

# Query-only connections, each with its own thread: two cores here.
DEFAULT_READERS = 2
# A keyword search is split only into ranges of at least this many chunks: below it,
# the hop to a second reader costs more than the scoring it shares.
KEYWORD_PART_ROWS = 20_000
# Reads of records by id run on the event loop's thread up to this many ids (ten hits'
# chunks take ~0.1 ms there); more go to a reader, not to hold the loop.
INLINE_MAX_KEYS = 64


class SqliteGraphStore:
    """The graph in one SQLite file at ``path`` (parent directories are created)."""

    capabilities: frozenset[str] = frozenset({KEYWORD_SEARCH, TRANSACTIONS})

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        readers: int = DEFAULT_READERS,
        keyword_part_rows: int = KEYWORD_PART_ROWS,
        keyword_postings: int | None = KEYWORD_CANDIDATE_POSTINGS,
    ) -> None:
        if readers < 1:
            raise ConfigurationError(f"the graph store needs at least one reader, got {readers}")
        if keyword_part_rows < 1:
            raise ConfigurationError(
                f"keyword_part_rows must be at least 1, got {keyword_part_rows}"
            )
        if keyword_postings is not None and keyword_postings < 1:
            raise ConfigurationError(f"keyword_postings must be at least 1, got {keyword_postings}")
        self.path = path
        self._keyword_part_rows = keyword_part_rows
        self._keyword_postings = keyword_postings
        self._busy_timeout_ms = busy_timeout_ms
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._in_flight: list[int] = []
        self._inline: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def start(self) -> None:
        """Open the connections and migrate the schema; a second call does nothing."""
        async with self._write_lock:
            if self._writer is not None:
                return
            writer = await open_connection(self.path, busy_timeout_ms=self._busy_timeout_ms)
            readers: list[aiosqlite.Connection] = []
            try:
                await migrate(
                    writer,
                    application_id=GRAPH_APPLICATION_ID,
                    steps=GRAPH_MIGRATIONS,
                    what="graph",
                )
                for _ in range(self._reader_count):
                    readers.append(
                        await open_connection(
                            self.path, busy_timeout_ms=self._busy_timeout_ms, query_only=True
                        )
                    )
                inline = open_inline_reader(self.path)
            except BaseException:
                for conn in [*readers, writer]:
                    with suppress(Exception):
                        await conn.close()
                raise
            self._writer, self._readers, self._inline = writer, readers, inline
            self._in_flight = [0] * len(readers)

    async def close(self) -> None:
        async with self._write_lock:
            writer, readers, inline = self._writer, self._readers, self._inline
            self._writer, self._readers, self._in_flight, self._inline = None, [], [], None
            with translate_errors("closing the graph store"):
                try:
                    if inline is not None:
                        inline.close()
                    for reader in readers:
                        await reader.close()
                finally:
                    if writer is not None:
                        await writer.close()

    # --- writes -----------------------------------------------------------------------

    async def write_document(self, bundle: DocumentBundle) -> None:
        validate_bundle(bundle)
        doc = bundle.document
        metadata = encode_optional_json(doc.metadata, f"metadata of {doc.id}")
        async with self._transaction("writing a document") as conn:
            old_entities, old_relations, _ = await self._detach(conn, doc.id)
            await conn.execute(
                sql.UPSERT_DOCUMENT,
                (
                    doc.id,
                    doc.title,
                    doc.text,
                    doc.source,
                    encode_optional_time(doc.published_at),
                    encode_time(doc.ingested_at),
                    metadata,
                    doc.chunk_count,
                ),
            )
            await conn.execute(sql.UPSERT_DOCUMENT_TITLE, (doc.id, doc.title))
            await conn.executemany(
                sql.INSERT_CHUNK,
                [
                    (c.id, c.document_id, c.index, c.text, c.start, c.end, c.token_count)
                    for c in bundle.chunks
                ],
            )
            await conn.executemany(
                sql.INSERT_ENTITY, [(e.id, e.key, e.name, e.type) for e in bundle.entities]
            )
            await conn.executemany(
                sql.INSERT_MENTION,
                [
                    (m.entity_id, m.chunk_id, m.start, m.end, m.document_id, m.text)
                    for m in bundle.mentions
                ],
            )
            await conn.executemany(
                sql.INSERT_RELATION,
                [(r.id, r.type, r.source_id, r.target_id, r.confidence) for r in bundle.relations],
            )
            await conn.executemany(
                sql.INSERT_EVIDENCE,
                [
                    (v.relation_id, v.chunk_id, v.text, v.document_id, v.confidence)
                    for v in bundle.evidence
                ],
            )
            await self._collect(conn, old_entities, old_relations)
            await self._refresh(
                conn,
                old_entities | {e.id for e in bundle.entities},
                old_relations | {r.id for r in bundle.relations},
            )
            await conn.execute(sql.BUMP_VERSION)

    async def delete_document(self, document_id: str) -> DeletedDocument | None:
        async with self._transaction("deleting a document") as conn:
            if not list(await conn.execute_fetchall(sql.DOCUMENT_EXISTS, (document_id,))):
                return None
            entities, relations, chunk_ids = await self._detach(conn, document_id)
            await conn.execute(sql.DELETE_DOCUMENT, (document_id,))
            removed_entities, removed_relations = await self._collect(conn, entities, relations)
            await self._refresh(conn, entities, relations)
            await conn.execute(sql.BUMP_VERSION)
        return DeletedDocument(
            document_id=document_id,
            chunk_ids=tuple(chunk_ids),
            removed_entity_ids=tuple(sorted(removed_entities)),
            removed_relation_ids=tuple(sorted(removed_relations)),
        )

    @asynccontextmanager
    async def _transaction(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            conn = _started(self._writer)
            with translate_errors(action):
                try:
                    await conn.execute("BEGIN IMMEDIATE")
                    yield conn
                    await conn.execute("COMMIT")
                except BaseException:
                    # Runs on the connection's thread after anything still queued (a
                    # cancelled BEGIN included), and only if a transaction is open.
                    with suppress(sqlite3.Error):
                        await conn.rollback()
                    raise

    @staticmethod
    async def _detach(
        conn: aiosqlite.Connection, document_id: str
    ) -> tuple[set[str], set[str], list[str]]:
        """Delete a document's chunks, mentions and evidence (not the document row);
        return the entities and relations they supported, and the chunk ids."""
        key = (document_id,)
        entities = {r[0] for r in await conn.execute_fetchall(sql.ENTITIES_OF_DOCUMENT, key)}
        relations = {r[0] for r in await conn.execute_fetchall(sql.RELATIONS_OF_DOCUMENT, key)}
        chunk_ids = [r[0] for r in await conn.execute_fetchall(sql.CHUNK_IDS_OF_DOCUMENT, key)]
        await conn.execute(sql.DELETE_EVIDENCE_OF_DOCUMENT, key)
        await conn.execute(sql.DELETE_MENTIONS_OF_DOCUMENT, key)
        await conn.execute(sql.DELETE_CHUNKS_OF_DOCUMENT, key)
        return entities, relations, chunk_ids

    @staticmethod
    async def _collect(
        conn: aiosqlite.Connection, entities: set[str], relations: set[str]
    ) -> tuple[list[str], list[str]]:
        """Delete, among the given ones, entities left without mentions and relations
        left without evidence or without an end; return their ids."""
        if not entities and not relations:
            return [], []
        orphans = [
            r[0]
            for r in await conn.execute_fetchall(sql.ORPHAN_ENTITIES, {"keys": id_list(entities)})
        ]
        params = {"keys": id_list(relations), "orphans": id_list(orphans)}
        removed = [r[0] for r in await conn.execute_fetchall(sql.DELETE_ORPHAN_RELATIONS, params)]
        await conn.execute(sql.DELETE_ENTITIES, {"keys": id_list(orphans)})
        return orphans, removed

    @staticmethod
    async def _refresh(conn: aiosqlite.Connection, entities: set[str], relations: set[str]) -> None:
        await conn.execute(sql.REFRESH_ENTITIES, {"keys": id_list(sorted(entities))})
        await conn.execute(sql.REFRESH_RELATIONS, {"keys": id_list(sorted(relations))})

    # --- point reads ------------------------------------------------------------------

    async def get_documents(self, ids: Sequence[str]) -> list[Document | None]:
        return await self._get(ids, sql.GET_DOCUMENTS, document_row, "reading documents")

    async def get_chunks(self, ids: Sequence[str]) -> list[Chunk | None]:
        return await self._get(ids, sql.GET_CHUNKS, chunk_row, "reading chunks")

    async def get_entities(self, ids: Sequence[str]) -> list[Entity | None]:
        return await self._get(ids, sql.GET_ENTITIES, entity_row, "reading entities")

    async def get_relations(self, ids: Sequence[str]) -> list[Relation | None]:
        return await self._get(ids, sql.GET_RELATIONS, relation_row, "reading relations")

    async def _get(
        self,
        ids: Sequence[str],
        query: str,
        build: Callable[[sqlite3.Row], T],
        action: str,
    ) -> list[T | None]:
        if not ids:
            return []
        read = self._point if len(ids) <= INLINE_MAX_KEYS else self._fetch
        rows = await read(query, {"keys": id_list(ids)}, action)
        found = {row["id"]: build(row) for row in rows}
        return [found.get(i) for i in ids]

    # --- lists ------------------------------------------------------------------------

    async def list_documents(self, filter: DocumentFilter, page: PageRequest) -> Page[Document]:
        params = {
            "source": filter.source,
            "title": _folded(filter.title_contains),
            "after": encode_optional_time(filter.ingested_after),
        }
        pages = await self._pages(sql.LIST_DOCUMENTS, params, [""], page, document_row)
        return pages[""]

    async def list_entities(self, filter: EntityFilter, page: PageRequest) -> Page[Entity]:
        params = {"type": filter.type, "name": _folded(filter.name_contains)}
        pages = await self._pages(sql.LIST_ENTITIES, params, [""], page, entity_row)
        return pages[""]

    async def list_relations(self, filter: RelationFilter, page: PageRequest) -> Page[Relation]:
        params = {"type": filter.type, "source": filter.source_id, "target": filter.target_id}
        pages = await self._pages(sql.LIST_RELATIONS, params, [""], page, relation_row)
        return pages[""]

    # --- edges, batched by key ----------------------------------------------------------

    async def chunks_of_documents(
        self, document_ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Chunk]]:
        return await self._keyed_pages(sql.CHUNKS_OF_DOCUMENTS, {}, document_ids, page, chunk_row)

    async def entities_of_documents(
        self, document_ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Entity]]:
        return await self._keyed_pages(
            sql.ENTITIES_OF_DOCUMENTS, {}, document_ids, page, entity_row
        )

    async def entities_of_chunks(self, chunk_ids: Sequence[str]) -> dict[str, list[Entity]]:
        result: dict[str, list[Entity]] = {i: [] for i in chunk_ids}
        if chunk_ids:
            params = {"keys": id_list(chunk_ids)}
            for row in await self._fetch(sql.ENTITIES_OF_CHUNKS, params, "reading entities"):
                result[row["_k"]].append(entity_row(row))
        return result

    async def documents_of_entities(
        self, entity_ids: Sequence[str], page: PageRequest
    ) -> dict[str, Page[Document]]:
        return await self._keyed_pages(
            sql.DOCUMENTS_OF_ENTITIES, {}, entity_ids, page, document_row
        )

    async def relations_of_entities(
        self, entity_ids: Sequence[str], direction: Direction, page: PageRequest
    ) -> dict[str, Page[Relation]]:
        params = {
            "outgoing": direction in (Direction.OUT, Direction.BOTH),
            "incoming": direction in (Direction.IN, Direction.BOTH),
        }
        return await self._keyed_pages(
            sql.RELATIONS_OF_ENTITIES, params, entity_ids, page, relation_row
        )

    async def evidence_of_relations(self, relation_ids: Sequence[str]) -> dict[str, list[Evidence]]:
        result: dict[str, list[Evidence]] = {i: [] for i in relation_ids}
        if relation_ids:
            params = {"keys": id_list(relation_ids)}
            for row in await self._fetch(sql.EVIDENCE_OF_RELATIONS, params, "reading evidence"):
                result[row["relation_id"]].append(evidence_row(row))
        return result

    async def _keyed_pages(
        self,
        query: str,
        params: Mapping[str, Any],
        keys: Sequence[str],
        page: PageRequest,
        build: Callable[[sqlite3.Row], T],
    ) -> dict[str, Page[T]]:
        if not keys:
            _check_page(page)
            return {}
        return await self._pages(query, {**params, "keys": id_list(keys)}, keys, page, build)

    async def _pages(
        self,
        query: str,
        params: Mapping[str, Any],
        keys: Iterable[str],
        page: PageRequest,
        build: Callable[[sqlite3.Row], T],
    ) -> dict[str, Page[T]]:
        """Run a ``sqlite_graph_sql._paged`` statement; every key gets a page."""
        _check_page(page)
        stop = page.offset + page.limit
        items: dict[str, list[T]] = {k: [] for k in keys}
        totals: dict[str, int] = {}
        rows = await self._fetch(query, {**params, "off": page.offset, "stop": stop}, "paging")
        for row in rows:
            key = row["_k"]
            totals[key] = row["_total"]
            if page.offset < row["_rn"] <= stop:
                items[key].append(build(row))
        return {k: Page(items=v, total=totals.get(k, 0)) for k, v in items.items()}

    # --- search and counts ------------------------------------------------------------

    async def keyword_search(self, query: str, k: int, filter: ChunkFilter) -> list[ChunkHit]:
        words = query_words(query)
        if matches_nothing(k, filter) or not words:
            return []
        params: dict[str, Any] = {"match": fts_any(words), "k": k}
        if filter.document_ids is None and filter.entity_types is None:
            statement = sql.KEYWORD_SEARCH
        else:
            statement = sql.KEYWORD_SEARCH_FILTERED
            params["documents"] = (
                None if filter.document_ids is None else id_list(filter.document_ids)
            )
            params["types"] = None if filter.entity_types is None else id_list(filter.entity_types)
        (bounds,) = await self._point(sql.CHUNK_SEQ_RANGE, {}, "searching chunk text")
        if bounds["lo"] is None:
            return []
        lo, hi = int(bounds["lo"]), int(bounds["hi"])
        budget = self._keyword_postings
        if statement is sql.KEYWORD_SEARCH and budget is not None and hi - lo + 1 > budget:
            candidates = await self._keyword_candidates(words, budget)
            if candidates is not None:
                among = {**params, "candidates": fts_any(candidates)}
                # One statement: split, each part would count the words' chunks again
                # for bm25's statistics, which is most of what is left to do.
                hits = await self._keyword_parts(sql.KEYWORD_SEARCH_AMONG, among, k, None)
                if len(hits) == k:
                    return hits
        return await self._keyword_parts(statement, params, k, (lo, hi))

    async def _keyword_candidates(self, words: Sequence[str], budget: int) -> list[str] | None:
        """The words whose chunks a search scores (``keyword_candidates``), or ``None``
        for all of them."""
        terms = {fts_string(w): w for w in words}
        rows = await self._fetch(
            sql.KEYWORD_TERM_CHUNKS, {"terms": id_list(terms)}, "searching chunk text"
        )
        counts = ((terms[r["term"]], int(r["chunks"])) for r in rows)
        return candidate_words(counts, budget)

    async def _keyword_parts(
        self,
        statement: str,
        params: Mapping[str, Any],
        k: int,
        seqs: tuple[int, int] | None,
    ) -> list[ChunkHit]:
        """``statement`` over every chunk, split into ranges of ``seqs`` (the lowest and
        highest seq) run side by side (``_keyword_ranges``) unless that is ``None``,
        merged into the best ``k``."""
        ranges = [(_MIN_ROWID, _MAX_ROWID)] if seqs is None else self._keyword_ranges(*seqs)
        parts = await asyncio.gather(
            *(
                self._fetch(statement, {**params, "lo": a, "hi": b}, "searching chunk text")
                for a, b in ranges
            )
        )
        ranked = sorted(itertools.chain(*parts), key=lambda r: (-r["score"], r["seq"]))
        # The parts are separate statements: a document rewritten between them could show
        # a chunk in two of them, under its old seq and its new one. It is listed once.
        hits: dict[str, ChunkHit] = {}
        for r in ranked:
            if len(hits) == k:
                break
            hits.setdefault(
                r["chunk_id"],
                ChunkHit(chunk_id=r["chunk_id"], document_id=r["document_id"], score=r["score"]),
            )
        return list(hits.values())

    def _keyword_ranges(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The seq ranges a keyword search runs as (see the module docstring): one per
        idle reader, each of at least ``keyword_part_rows`` seqs; one covering every seq
        when the store is busy or small."""
        n = min(self._in_flight.count(0), (hi - lo + 1) // self._keyword_part_rows)
        if n < 2:
            return [(_MIN_ROWID, _MAX_ROWID)]
        cuts = [lo + (hi - lo + 1) * i // n for i in range(n + 1)]
        return [(cuts[i], cuts[i + 1] - 1) for i in range(n)]

    async def search_entities(self, words: Sequence[str], k: int) -> list[Entity]:
        terms = entity_search_terms(words, k)
        if not terms:
            return []
        # Quoted, each word is a string to FTS5: no operator, column or prefix syntax.
        params = {"terms": id_list(map(fts_string, terms)), "k": k}
        rows = await self._fetch(sql.SEARCH_ENTITIES, params, "searching entity names")
        return [entity_row(r) for r in rows]

    async def stats(self) -> GraphStats:
        rows = await self._fetch(sql.STATS, {}, "counting")
        row = rows[0]
        return GraphStats(
            documents=row["documents"],
            chunks=row["chunks"],
            entities=row["entities"],
            relations=row["relations"],
        )

    async def version(self) -> int:
        rows = await self._point(sql.GRAPH_VERSION, {}, "reading the graph version")
        return int(rows[0]["version"])

    # --- walks (graph_walks holds the algorithm; these are its reads) ---------------------

    async def neighborhood(self, entity_id: str, depth: int, limit: int) -> Subgraph | None:
        return await graph_walks.neighborhood(self, entity_id, depth, limit)

    async def shortest_path(self, from_id: str, to_id: str, max_hops: int) -> GraphPath | None:
        return await graph_walks.shortest_path(self, from_id, to_id, max_hops)

    async def links(
        self, frontier: Sequence[str], seen: Sequence[str], room: int
    ) -> list[graph_walks.Link]:
        params = {"frontier": id_list(frontier), "seen": id_list(seen), "room": room}
        rows = await self._fetch(sql.WALK_LINKS, params, "walking the graph")
        return [
            graph_walks.Link(entity_id=r["entity_id"], via=r["via"], relation=relation_row(r))
            for r in rows
        ]

    async def relations_among(self, ids: Sequence[str]) -> list[Relation]:
        rows = await self._fetch(sql.RELATIONS_AMONG, {"keys": id_list(ids)}, "reading relations")
        return [relation_row(r) for r in rows]

    async def _point(self, query: str, params: Mapping[str, Any], action: str) -> list[sqlite3.Row]:
        """A point read on the event loop's thread (see the module docstring); through a
        reader when the file is busy, since this connection never waits."""
        conn = self._inline
        if conn is None:
            raise UnavailableError(NOT_STARTED)
        try:
            return conn.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            if not is_busy(exc):
                raise error_from(exc, action) from exc
        return await self._fetch(query, params, action)

    async def _fetch(self, query: str, params: Mapping[str, Any], action: str) -> list[sqlite3.Row]:
        if not self._readers:
            raise UnavailableError(NOT_STARTED)
        readers, in_flight = self._readers, self._in_flight
        n = min(range(len(readers)), key=in_flight.__getitem__)
        in_flight[n] += 1
        try:
            with translate_errors(action):
                return list(await readers[n].execute_fetchall(query, params))
        finally:
            in_flight[n] -= 1


def _started(conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
    if conn is None:
        raise UnavailableError(NOT_STARTED)
    return conn


def _check_page(page: PageRequest) -> None:
    if page.offset < 0 or page.limit < 0:
        raise BadInputError(f"offset and limit must not be negative, got {page}")


def _folded(text: str | None) -> str | None:
    return None if text is None else text.casefold()
