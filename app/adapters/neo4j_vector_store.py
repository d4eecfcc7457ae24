"""VectorStore on Neo4j's native vector index (``KG_VECTOR_URL=bolt://`` or ``neo4j://``).

For deployments that want one database, or several processes on one store (Qdrant's
embedded modes belong to one process). Vectors live on their own label,
``(:ChunkVector {id, chunk_id, document_id, entity_types, embedding})``, so they never
collide with the graph store's ``:Chunk`` nodes in the same database. ``id`` is
``point_id(chunk_id)`` (unique constraint); ``document_id`` has a range index.

Search. Neo4j 5.26's vector index (HNSW, Lucene) cannot pre-filter, so:

* with ``document_ids`` (selective by nature) or on a small store (at most
  ``EXACT_SCAN_MAX`` vectors), an exact scan: the matching nodes, found through the
  ``document_id`` index or the label, scored with ``vector.similarity.cosine``;
* otherwise ``db.index.vector.queryNodes`` with ``k`` candidates (no filter) or an
  over-fetch of ``k * OVERFETCH`` filtered in Cypher, grown ``OVERFETCH``-fold until
  ``k`` hits pass the filter; once the fetch would cover ``SCAN_FRACTION`` of the
  store, an exact scan finishes instead (the filter is selective, a scan is as cheap
  and cannot miss).

Either way the filter applies before the top ``k``. Candidates are re-scored exactly
(the index holds float32 copies), ties broken by chunk id. Neo4j scores cosine as
``(1 + cos) / 2``; hits carry ``cos`` in [-1, 1]. The index is created without
quantization (5.26 quantizes by default, off by ~1e-2 in cosine, which costs recall).

Zero vectors are refused: the cosine index silently skips them, so they could never be
found. Writes run in managed transactions (the driver retries transient failures).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import AbstractContextManager, suppress
from typing import Any

import neo4j

from app.adapters.neo4j_connection import Neo4jConnection
from app.adapters.search_checks import checked_vector
from app.domain.errors import BackendError, ConfigurationError, UnavailableError
from app.domain.ids import point_id
from app.domain.models import ChunkFilter, ChunkHit, VectorPoint
from app.ports.vector_store import FILTER_DOCUMENTS, FILTER_ENTITY_TYPES

# Schema names: constants, never user input.
LABEL = "ChunkVector"
VECTOR_INDEX = "chunk_vector_embedding"
ID_CONSTRAINT = "chunk_vector_id"
DOCUMENT_INDEX = "chunk_vector_document_id"

UPSERT_BATCH = 500  # points per statement
DELETE_BATCH = 1_000  # document ids per statement
EXACT_SCAN_MAX = 2_000  # stores this small are always scanned exactly
OVERFETCH = 4  # candidates fetched per hit wanted when filtering, and growth per retry
MIN_FETCH = 64
SCAN_FRACTION = 0.25  # an over-fetch this large of the store gives way to a scan

_ALREADY_EXISTS = (
    "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
    "Neo.ClientError.Schema.IndexAlreadyExists",
    "Neo.ClientError.Schema.ConstraintAlreadyExists",
)

_CREATE_CONSTRAINT = (
    f"CREATE CONSTRAINT {ID_CONSTRAINT} IF NOT EXISTS FOR (v:{LABEL}) REQUIRE v.id IS UNIQUE"
)
_CREATE_DOCUMENT_INDEX = (
    f"CREATE INDEX {DOCUMENT_INDEX} IF NOT EXISTS FOR (v:{LABEL}) ON (v.document_id)"
)
_CREATE_VECTOR_INDEX = (
    f"CREATE VECTOR INDEX {VECTOR_INDEX} IF NOT EXISTS FOR (v:{LABEL}) ON v.embedding "
    "OPTIONS {indexConfig: {`vector.dimensions`: $dimension, "
    "`vector.similarity_function`: 'cosine', `vector.quantization.enabled`: false}}"
)
_VECTOR_INDEX_INFO = (
    "SHOW VECTOR INDEXES YIELD name, labelsOrTypes, properties, options "
    "WHERE name = $name RETURN labelsOrTypes, properties, options"
)
_STORED_DIMENSION = f"MATCH (v:{LABEL}) RETURN size(v.embedding) AS dimension LIMIT 1"
_AWAIT_INDEXES = "CALL db.awaitIndexes($seconds)"
_INDEX_STATES = (
    "SHOW INDEXES YIELD name, state, failureMessage WHERE name IN $names "
    "RETURN name, state, failureMessage"
)
_UPSERT = (
    "UNWIND $rows AS row "
    f"MERGE (v:{LABEL} {{id: row.id}}) "
    "SET v.chunk_id = row.chunk_id, v.document_id = row.document_id, "
    "v.entity_types = row.entity_types, v.embedding = row.embedding"
)
_DELETE = f"MATCH (v:{LABEL}) WHERE v.document_id IN $document_ids DETACH DELETE v"
_COUNT = f"MATCH (v:{LABEL}) RETURN count(v) AS n"

_TYPES_MATCH = "($types IS NULL OR any(t IN v.entity_types WHERE t IN $types))"
_SCORED = (
    "WITH v, vector.similarity.cosine(v.embedding, $vector) AS s "
    "ORDER BY s DESC, v.chunk_id LIMIT $k "
    "RETURN v.chunk_id AS chunk_id, v.document_id AS document_id, s"
)
_SCAN_DOCUMENTS = (
    f"MATCH (v:{LABEL}) WHERE v.document_id IN $document_ids AND {_TYPES_MATCH} {_SCORED}"
)
_SCAN_ALL = f"MATCH (v:{LABEL}) WHERE {_TYPES_MATCH} {_SCORED}"
_QUERY_INDEX = (
    "CALL db.index.vector.queryNodes($index, $fetch, $vector) YIELD node AS v "
    f"WHERE {_TYPES_MATCH} {_SCORED}"
)


class Neo4jVectorStore:
    """Chunks' vectors in the database of ``connection`` (a ``Neo4jConnection``: the
    graph store's when both live in one database, so one pool serves both). Stores of
    at most ``exact_scan_max`` vectors are searched exactly, without the index."""

    capabilities = frozenset({FILTER_DOCUMENTS, FILTER_ENTITY_TYPES})

    def __init__(
        self, connection: Neo4jConnection, *, exact_scan_max: int = EXACT_SCAN_MAX
    ) -> None:
        self._connection = connection
        self.where = connection.where
        self._database = connection.database
        self._timeout = connection.timeout
        self._exact_scan_max = exact_scan_max
        self._driver: neo4j.AsyncDriver | None = None
        self._dimension = 0
        self._lock = asyncio.Lock()

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, dimension: int) -> None:
        if dimension < 1:
            raise ConfigurationError(f"vector dimension must be positive, got {dimension}")
        async with self._lock:
            if self._driver is not None:
                if dimension != self._dimension:
                    raise ConfigurationError(
                        f"vector store at {self.where} is open with dimension "
                        f"{self._dimension}, not {dimension}"
                    )
                return
            driver = await self._connection.acquire()
            try:
                await self._create_schema(driver, dimension)
            except BaseException:
                await self._connection.abandon()  # keeps the cause
                raise
            self._driver, self._dimension = driver, dimension

    async def close(self) -> None:
        async with self._lock:
            driver, self._driver = self._driver, None
            if driver is not None:
                await self._connection.release()

    async def _create_schema(self, driver: neo4j.AsyncDriver, dimension: int) -> None:
        await self._check_dimension(driver, dimension)
        for name, statement in (
            (ID_CONSTRAINT, _CREATE_CONSTRAINT),
            (DOCUMENT_INDEX, _CREATE_DOCUMENT_INDEX),
            (VECTOR_INDEX, _CREATE_VECTOR_INDEX),
        ):
            with self._translated(f"creating {name}"):
                try:
                    await self._query(driver, statement, dimension=dimension)
                except neo4j.exceptions.ClientError as exc:
                    if exc.code not in _ALREADY_EXISTS:  # else another process created it
                        raise
        await self._check_dimension(driver, dimension)  # the winner of a creation race
        with self._translated("waiting for indexes"):
            with suppress(neo4j.exceptions.ClientError):  # timed out: the states say so
                await self._query(driver, _AWAIT_INDEXES, seconds=max(1, int(self._timeout)))
            names = [ID_CONSTRAINT, DOCUMENT_INDEX, VECTOR_INDEX]
            records = await self._query(driver, _INDEX_STATES, names=names)
        for record in records:
            state, name = record["state"], record["name"]
            if state == "FAILED":
                reason = record["failureMessage"] or "no reason given"
                raise BackendError(f"Neo4j index {name} failed: {reason}")
            if state != "ONLINE":
                raise UnavailableError(f"Neo4j index {name} is still {state}; try again later")

    async def _check_dimension(self, driver: neo4j.AsyncDriver, dimension: int) -> None:
        """An existing index (or stored vectors) of another shape is a ConfigurationError."""
        with self._translated("reading the vector index"):
            indexes = await self._query(driver, _VECTOR_INDEX_INFO, name=VECTOR_INDEX)
            stored = await self._query(driver, _STORED_DIMENSION)
        found: list[int] = [int(r["dimension"]) for r in stored if r["dimension"] is not None]
        for record in indexes:
            if record["labelsOrTypes"] != [LABEL] or record["properties"] != ["embedding"]:
                raise ConfigurationError(
                    f"Neo4j index {VECTOR_INDEX} at {self.where} is not on "
                    f":{LABEL}(embedding); drop it or use another database"
                )
            config = (record["options"] or {}).get("indexConfig") or {}
            found.append(int(config.get("vector.dimensions", 0)))
        if any(d != dimension for d in found):
            raise ConfigurationError(
                f"the vector store at {self.where} holds vectors of dimension {found[0]}, "
                f"not {dimension} (drop index {VECTOR_INDEX} and the :{LABEL} nodes, or "
                "use another database)"
            )

    # --- writes ----------------------------------------------------------------------

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        self._started()
        rows = [self._row(p) for p in points]  # validate everything before writing
        for i in range(0, len(rows), UPSERT_BATCH):
            await self._write(_UPSERT, "upserting vectors", rows=rows[i : i + UPSERT_BATCH])

    async def delete_documents(self, document_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            return
        self._started()
        for i in range(0, len(ids), DELETE_BATCH):
            await self._write(_DELETE, "deleting vectors", document_ids=ids[i : i + DELETE_BATCH])

    async def _write(self, statement: str, action: str, **params: Any) -> None:
        driver = self._started()

        async def work(tx: neo4j.AsyncManagedTransaction) -> None:
            await (await tx.run(statement, params)).consume()

        with self._translated(action):
            async with driver.session(
                database=self._database,
                bookmark_manager=driver.execute_query_bookmark_manager,
            ) as session:
                await session.execute_write(neo4j.unit_of_work(timeout=self._timeout)(work))

    # --- reads -----------------------------------------------------------------------

    async def search(self, vector: Sequence[float], k: int, filter: ChunkFilter) -> list[ChunkHit]:
        driver = self._started()
        query = checked_vector(vector, self._dimension, nonzero=True)
        if k <= 0 or filter.document_ids == () or filter.entity_types == ():
            return []  # an empty id or type list matches nothing
        docs = None if filter.document_ids is None else list(filter.document_ids)
        types = None if filter.entity_types is None else list(filter.entity_types)
        base = {"vector": query, "k": k, "types": types}

        async def work(tx: neo4j.AsyncManagedTransaction) -> list[Any]:
            if docs is not None:
                return await _rows(tx, _SCAN_DOCUMENTS, document_ids=docs, **base)
            total = int((await (await tx.run(_COUNT)).single(strict=True))["n"])
            if total <= self._exact_scan_max:
                return await _rows(tx, _SCAN_ALL, **base)
            fetch = k if types is None else max(k * OVERFETCH, MIN_FETCH)
            while fetch < total * SCAN_FRACTION:
                found = await _rows(tx, _QUERY_INDEX, index=VECTOR_INDEX, fetch=fetch, **base)
                if types is None or len(found) >= k:
                    return found
                fetch *= OVERFETCH
            return await _rows(tx, _SCAN_ALL, **base)

        with self._translated("searching vectors"):
            async with driver.session(
                database=self._database,
                bookmark_manager=driver.execute_query_bookmark_manager,
            ) as session:
                records = await session.execute_read(
                    neo4j.unit_of_work(timeout=self._timeout)(work)
                )
        return [
            ChunkHit(
                chunk_id=str(r["chunk_id"]),
                document_id=str(r["document_id"]),
                score=max(-1.0, min(1.0, 2.0 * float(r["s"]) - 1.0)),
            )
            for r in records
        ]

    async def count(self) -> int:
        driver = self._started()
        with self._translated("counting vectors"):
            records = await self._query(driver, _COUNT, routing=neo4j.RoutingControl.READ)
        return int(records[0]["n"])

    # --- helpers ---------------------------------------------------------------------

    def _started(self) -> neo4j.AsyncDriver:
        if self._driver is None:
            raise UnavailableError(f"vector store at {self.where} is not open")
        return self._driver

    def _row(self, p: VectorPoint) -> dict[str, Any]:
        return {
            "id": point_id(p.chunk_id),
            "chunk_id": p.chunk_id,
            "document_id": p.document_id,
            "entity_types": list(p.entity_types),
            "embedding": checked_vector(p.vector, self._dimension, nonzero=True),
        }

    async def _query(
        self,
        driver: neo4j.AsyncDriver,
        statement: str,
        routing: neo4j.RoutingControl = neo4j.RoutingControl.WRITE,
        **params: Any,
    ) -> list[neo4j.Record]:
        result = await driver.execute_query(
            neo4j.Query(statement, timeout=self._timeout),
            params,
            routing_=routing,
            database_=self._database,
        )
        return list(result.records)

    def _translated(self, action: str) -> AbstractContextManager[None]:
        return self._connection.translated(action)


async def _rows(tx: neo4j.AsyncManagedTransaction, statement: str, **params: Any) -> list[Any]:
    return [record async for record in await tx.run(statement, params)]
