"""VectorStore on qdrant-client: a Qdrant server by URL, or qdrant-client's local mode.

With ``url`` (``http://``/``https://``) this talks REST to a Qdrant server, which many API
and worker processes share; payload indexes on ``document_id`` and ``entity_types`` let
the server filter inside the HNSW search. With ``path`` it uses qdrant-client's local
mode: the same Python API on an exact (brute-force) numpy search persisted in SQLite,
owned by one process (``FileLock``, as for Edge); meant for tests and small data (it
keeps every point in memory), it ignores payload indexes and search parameters, so we
send neither.

Failures become our errors at this boundary: connection problems, timeouts, 429 and
502/503/504 are ``UnavailableError`` (retryable); any other failure is ``BackendError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx
from qdrant_client import AsyncQdrantClient
from qdrant_client import models as qm
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from app.adapters.file_lock import FileLock
from app.adapters.search_checks import checked_vector
from app.domain.errors import (
    BackendError,
    ConfigurationError,
    ConflictError,
    KGError,
    UnavailableError,
)
from app.domain.ids import point_id
from app.domain.models import ChunkFilter, ChunkHit, VectorPoint
from app.ports.vector_store import FILTER_DOCUMENTS, FILTER_ENTITY_TYPES

T = TypeVar("T")

HNSW_EF = 128  # search effort on a server: at least this many candidates, or k
UPSERT_BATCH = 512  # points per request
DELETE_BATCH = 1_024  # document ids per request
TIMEOUT_SECONDS = 10
LOCK_FILE = "owner.lock"
_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
_PAYLOAD = ["chunk_id", "document_id"]
_INDEXED_FIELDS = ("document_id", "entity_types")


class QdrantVectorStore:
    """Chunks' vectors in one Qdrant collection, on a server (``url``) or on disk (``path``)."""

    capabilities = frozenset({FILTER_DOCUMENTS, FILTER_ENTITY_TYPES})

    def __init__(
        self,
        url: str | None,
        path: Path | None,
        api_key: str | None = None,
        collection: str = "chunks",
    ) -> None:
        if (url is None) == (path is None):
            raise ConfigurationError("the Qdrant vector store needs exactly one of url or path")
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ConfigurationError(f"Qdrant url {url!r} must start with http:// or https://")
        if not collection:
            raise ConfigurationError("the Qdrant collection name must not be empty")
        self.url = url
        self.path = path
        self.collection = collection
        self._api_key = api_key
        self._client: AsyncQdrantClient | None = None
        # Local mode: our lock first. qdrant-client locks the folder too, but leaks an open
        # file when that lock is refused.
        self._owner = (
            FileLock(path / LOCK_FILE, owner="the Qdrant local-mode vector store") if path else None
        )
        self._dimension = 0
        self._start_lock = asyncio.Lock()

    @property
    def _where(self) -> str:
        return f"Qdrant collection {self.collection!r} at {self.url or self.path}"

    @property
    def _remote(self) -> bool:
        return self.url is not None

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, dimension: int) -> None:
        if dimension < 1:
            raise ConfigurationError(f"vector dimension must be positive, got {dimension}")
        async with self._start_lock:
            if self._client is not None:
                if dimension != self._dimension:
                    raise ConfigurationError(
                        f"{self._where} is open with dimension {self._dimension}, not {dimension}"
                    )
                return
            if self._owner is not None:
                self._owner.acquire()
            try:
                client = await self._connect()
                try:
                    with self._translated("start"):
                        await self._ensure_collection(client, dimension)
                except BaseException:
                    await client.close()
                    raise
            except BaseException:
                if self._owner is not None:
                    self._owner.release()
                raise
            self._client, self._dimension = client, dimension

    async def _connect(self) -> AsyncQdrantClient:
        if self.url is not None:
            return AsyncQdrantClient(
                url=self.url,
                api_key=self._api_key,
                timeout=TIMEOUT_SECONDS,
                check_compatibility=False,  # it would probe from a thread and only warn
            )
        location = str(self.path)
        try:
            # On the loop's thread: local mode's SQLite connection may refuse other threads.
            return AsyncQdrantClient(path=location)
        except RuntimeError as exc:  # qdrant-client's own lock on the folder
            raise ConflictError(f"{self._where} is open elsewhere: {exc}", path=location) from exc
        except Exception as exc:
            raise BackendError(f"cannot open {self._where}: {exc}") from exc

    async def _ensure_collection(self, client: AsyncQdrantClient, dimension: int) -> None:
        if not await client.collection_exists(self.collection):
            try:
                await client.create_collection(
                    self.collection,
                    vectors_config=qm.VectorParams(size=dimension, distance=qm.Distance.COSINE),
                )
            except UnexpectedResponse as exc:
                if exc.status_code != 409:  # 409: another process created it first
                    raise
        info = await client.get_collection(self.collection)
        vectors = info.config.params.vectors
        if not isinstance(vectors, qm.VectorParams):
            raise ConfigurationError(
                f"{self._where} has named vectors; expected one unnamed vector"
            )
        if vectors.size != dimension or vectors.distance != qm.Distance.COSINE:
            raise ConfigurationError(
                f"{self._where} holds {vectors.distance.value} vectors of dimension "
                f"{vectors.size}, not Cosine of {dimension} (delete it or use another collection)"
            )
        if self._remote:  # local mode has no payload indexes (and warns when asked)
            for field in _INDEXED_FIELDS:
                if field not in info.payload_schema:
                    await client.create_payload_index(
                        self.collection, field, qm.PayloadSchemaType.KEYWORD, wait=True
                    )

    async def close(self) -> None:
        async with self._start_lock:
            client, self._client = self._client, None
            try:
                if client is not None:
                    with self._translated("close"):
                        await client.close()
            finally:
                if self._owner is not None:
                    self._owner.release()

    # --- writes ----------------------------------------------------------------------

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        client = self._require()
        structs = [self._point(p) for p in points]
        for i in range(0, len(structs), UPSERT_BATCH):
            batch = structs[i : i + UPSERT_BATCH]
            await self._call("upsert", partial(client.upsert, self.collection, batch, wait=True))

    async def delete_documents(self, document_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            return
        client = self._require()
        for i in range(0, len(ids), DELETE_BATCH):
            selector = qm.FilterSelector(
                filter=qm.Filter(must=[_match_any("document_id", ids[i : i + DELETE_BATCH])])
            )
            await self._call("delete", partial(client.delete, self.collection, selector, wait=True))

    # --- reads -----------------------------------------------------------------------

    async def search(self, vector: Sequence[float], k: int, filter: ChunkFilter) -> list[ChunkHit]:
        client = self._require()
        query = checked_vector(vector, self._dimension)
        if k <= 0:
            return []
        conditions = _conditions(filter)
        if conditions is None:  # an empty id or type list matches nothing
            return []
        params = qm.SearchParams(hnsw_ef=max(HNSW_EF, k)) if self._remote else None
        response = await self._call(
            "search",
            lambda: client.query_points(
                self.collection,
                query=query,
                query_filter=qm.Filter(must=conditions) if conditions else None,
                search_params=params,
                limit=k,
                with_payload=_PAYLOAD,
            ),
        )
        return [_hit(p) for p in response.points]

    async def count(self) -> int:
        client = self._require()
        result = await self._call("count", lambda: client.count(self.collection, exact=True))
        return int(result.count)

    # --- helpers ---------------------------------------------------------------------

    def _require(self) -> AsyncQdrantClient:
        if self._client is None:
            raise UnavailableError(f"{self._where} is not open")
        return self._client

    def _point(self, p: VectorPoint) -> qm.PointStruct:
        return qm.PointStruct(
            id=point_id(p.chunk_id),
            vector=checked_vector(p.vector, self._dimension),
            payload={
                "chunk_id": p.chunk_id,
                "document_id": p.document_id,
                "entity_types": list(p.entity_types),
            },
        )

    async def _call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        with self._translated(what):
            return await fn()

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except KGError:
            raise
        except ResourceExhaustedResponse as exc:
            raise UnavailableError(f"{self._where} is overloaded ({what}): {exc}") from exc
        except ResponseHandlingException as exc:  # transport errors and timeouts
            raise UnavailableError(f"{self._where} is unreachable ({what}): {exc.source}") from exc
        except httpx.TransportError as exc:
            raise UnavailableError(f"{self._where} is unreachable ({what}): {exc}") from exc
        except UnexpectedResponse as exc:
            status = exc.status_code
            message = f"{self._where} answered {status} {exc.reason_phrase} to {what}"
            if status is None or status in _RETRYABLE_STATUS:
                raise UnavailableError(message) from exc
            raise BackendError(f"{message}: {exc.content[:200]!r}") from exc
        except Exception as exc:
            raise BackendError(f"{self._where} failed ({what}): {exc}") from exc


def _match_any(key: str, values: Sequence[str]) -> qm.FieldCondition:
    return qm.FieldCondition(key=key, match=qm.MatchAny(any=list(values)))


def _conditions(filter: ChunkFilter) -> list[qm.Condition] | None:
    """The filter's conditions (AND), ``[]`` for none, ``None`` when nothing can match."""
    conditions: list[qm.Condition] = []
    for key, values in (
        ("document_id", filter.document_ids),
        ("entity_types", filter.entity_types),
    ):
        if values is None:
            continue
        if not values:
            return None
        conditions.append(_match_any(key, values))
    return conditions


def _hit(point: qm.ScoredPoint) -> ChunkHit:
    payload = point.payload or {}
    return ChunkHit(
        chunk_id=str(payload["chunk_id"]),
        document_id=str(payload["document_id"]),
        score=float(point.score),
    )
