"""VectorStore on Qdrant Edge: Qdrant's own engine (HNSW, payload indexes) in-process.

The embedded default: no server, one directory (``<path>/<collection>``) that one process
owns. Ownership is an OS lock on a file in that directory (``FileLock``): the engine's
own WAL lock refuses a second open too, but with an opaque ``WouldBlock`` message and
only while the WAL is enabled, so we take ours first and fail with a ``ConflictError``
naming the path.

The engine is blocking. A search runs inline, on the event loop: qdrant-edge-py 0.9 holds
the GIL for the whole of a query (seen with py-spy in development), so a worker thread
bought no concurrency, only two thread hops, which on busy cores cost about as much as
the search itself at 100k points. Every other call
runs in a worker thread; writes are serialised by one asyncio lock (reads run beside
them: the engine is safe for concurrent readers).

Indexing. Edge has no background optimizer: segments are only indexed when ``optimize``
runs, so this adapter calls it after every write. It returns at once (tens of µs) when
nothing is planned; it builds an HNSW index when the appendable segment passes
``INDEXING_THRESHOLD_KB``, merges when there are too many segments, and vacuums deleted
points. The threshold bounds the part searched by brute force (the appendable segment).

Caveat: qdrant-edge-py 0.9 holds the GIL inside ``optimize``, so an index build pauses
the whole process (event loop included) although it runs in a worker thread. Hence
``MAX_SEGMENT_SIZE_KB``: it bounds the longest build (~10 s on 2 busy cores) at the cost
of searching several segments at 100k points (four HNSW segments and the appendable one
in the benchmark's store; merging them into one froze the process for minutes in
development). tests/benchmarks/query_latency.py reports the search's time and its
recall@10 against exact search on that store.

Quantization. Each segment also keeps int8 copies of its vectors (scalar quantization,
0.99 quantile, in RAM: a quarter of the float vectors' memory). The HNSW walk compares
the int8 copies, and the best ``QUANTIZED_OVERSAMPLING`` x ef candidates are rescored
with the float vectors, so the ranking is by exact cosine while most of the comparisons
are four times smaller. A store written before quantization was configured gets its int8
copies at its next open (``optimize``, once, before the server is ready; it holds the
GIL as above).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

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

# HNSW graph: Qdrant's defaults for m and ef_construct. Segments (and filtered
# candidate sets) under full_scan_threshold, ~1,300 vectors of 384 floats, are scanned
# exactly: there a scan costs about what a graph walk does, and is exact.
HNSW_M = 16
HNSW_EF_CONSTRUCT = 100
HNSW_FULL_SCAN_THRESHOLD_KB = 2_000
# Index the appendable segment once it holds this much vector data (~2,600 vectors of
# 384 floats): that tail is always searched by brute force, which stays a fraction of
# a millisecond below it.
INDEXING_THRESHOLD_KB = 4_000
# No segment larger than this (~26,000 vectors of 384 floats): it bounds the longest
# single index build (a GIL pause, see above) at the cost of searching a few segments
# at 100k points instead of one. Raise it where search latency matters more than pauses.
MAX_SEGMENT_SIZE_KB = 40_000
# Search effort: candidates kept per segment (at least k): about half the latency of
# Qdrant's default 100; the benchmark reports the recall it keeps on real embeddings.
HNSW_EF = 64
# Candidates rescored with the float vectors, per candidate the int8 walk would keep.
QUANTIZED_OVERSAMPLING = 2.0

UPSERT_BATCH = 512  # points per engine call
DELETE_BATCH = 1_024  # document ids per engine call
LOCK_FILE = "owner.lock"
_COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class IndexStatus:
    points: int
    indexed_vectors: int  # points reachable through an HNSW graph
    segments: int


class QdrantEdgeVectorStore:
    """Chunks' vectors in a Qdrant Edge shard on local disk, owned by this process."""

    capabilities = frozenset({FILTER_DOCUMENTS, FILTER_ENTITY_TYPES})

    def __init__(
        self,
        path: Path,
        collection: str = "chunks",
        *,
        indexing_threshold_kb: int = INDEXING_THRESHOLD_KB,
        max_segment_size_kb: int = MAX_SEGMENT_SIZE_KB,
    ) -> None:
        if not _COLLECTION_NAME.match(collection):
            raise ConfigurationError(
                f"vector collection name {collection!r} must be letters, digits, '_', '-', '.'"
            )
        if not 0 < indexing_threshold_kb <= max_segment_size_kb:
            raise ConfigurationError(
                "vector index thresholds must satisfy 0 < indexing_threshold_kb <= "
                f"max_segment_size_kb, got {indexing_threshold_kb} and {max_segment_size_kb}"
            )
        self.path = Path(path) / collection
        self._optimizers = qe.EdgeOptimizersConfig(
            indexing_threshold=indexing_threshold_kb, max_segment_size=max_segment_size_kb
        )
        self._lock = FileLock(self.path / LOCK_FILE, owner="the Qdrant Edge vector store")
        self._shard: Any = None
        self._dimension = 0
        self._write_lock = asyncio.Lock()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, dimension: int) -> None:
        if dimension < 1:
            raise ConfigurationError(f"vector dimension must be positive, got {dimension}")
        async with self._write_lock:
            if self._shard is not None:
                if dimension != self._dimension:
                    raise ConfigurationError(
                        f"vector store {self.path} is open with dimension {self._dimension}, "
                        f"not {dimension}"
                    )
                return
            self._lock.acquire()
            try:
                self._shard = await asyncio.to_thread(self._open, dimension)
            except BaseException:
                self._lock.release()
                raise
            self._dimension = dimension

    def _open(self, dimension: int) -> Any:
        try:
            # With a config, load creates the shard in an empty directory, checks that an
            # existing one has the same vectors, and stores our index settings.
            shard = qe.EdgeShard.load(str(self.path), self._config(dimension))
        except Exception as exc:
            raise _open_error(self.path, dimension, exc) from exc
        try:
            for field in ("document_id", "entity_types"):  # idempotent
                shard.update(
                    qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword)
                )
            shard.optimize()  # finish whatever an earlier process left unindexed
        except Exception as exc:
            shard.close()
            raise BackendError(f"cannot prepare vector store {self.path}: {exc}") from exc
        return shard

    async def close(self) -> None:
        """Close once in-flight reads are done; the lock is released even on failure."""
        async with self._write_lock:
            shard, self._shard = self._shard, None
            try:
                if shard is not None:
                    await self._idle.wait()
                    with _translated("close"):
                        await asyncio.to_thread(_close_shard, shard)
            finally:
                self._lock.release()

    # --- writes ----------------------------------------------------------------------

    async def upsert(self, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        self._require()
        batches = [
            [self._point(p) for p in points[i : i + UPSERT_BATCH]]
            for i in range(0, len(points), UPSERT_BATCH)
        ]
        async with self._write_lock:
            shard = self._require()
            for batch in batches:
                await self._run("upsert", _apply, shard, qe.UpdateOperation.upsert_points(batch))

    async def delete_documents(self, document_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            return
        async with self._write_lock:
            shard = self._require()
            for i in range(0, len(ids), DELETE_BATCH):
                match = _match_any("document_id", ids[i : i + DELETE_BATCH])
                op = qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=[match]))
                await self._run("delete", _apply, shard, op)

    # --- reads -----------------------------------------------------------------------

    async def search(self, vector: Sequence[float], k: int, filter: ChunkFilter) -> list[ChunkHit]:
        shard = self._require()
        query = checked_vector(vector, self._dimension)
        if k <= 0:
            return []
        conditions = _conditions(filter)
        if conditions is None:  # an empty id or type list matches nothing
            return []
        request = qe.QueryRequest(
            limit=k,
            query=qe.Query.Nearest(query),
            filter=qe.Filter(must=conditions) if conditions else None,
            with_payload=True,  # all three fields: faster than selecting two
            params=qe.SearchParams(
                hnsw_ef=max(HNSW_EF, k),
                quantization=qe.QuantizationSearchParams(
                    rescore=True, oversampling=QUANTIZED_OVERSAMPLING
                ),
            ),
        )
        with _translated("search"):
            found = shard.query(request)  # inline: see the module docstring
        return [_hit(p) for p in found]

    async def count(self) -> int:
        shard = self._require()
        return int(await self._run("count", shard.count, qe.CountRequest(exact=True)))

    async def index_status(self) -> IndexStatus:
        """How much of the store the HNSW index covers (for health checks and tests)."""
        shard = self._require()
        info = await self._run("info", shard.info)
        return IndexStatus(
            points=int(info.points_count),
            indexed_vectors=int(info.indexed_vectors_count),
            segments=int(info.segments_count),
        )

    # --- helpers ---------------------------------------------------------------------

    def _config(self, dimension: int) -> Any:
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine),
            hnsw_config=qe.HnswIndexConfig(
                m=HNSW_M,
                ef_construct=HNSW_EF_CONSTRUCT,
                full_scan_threshold=HNSW_FULL_SCAN_THRESHOLD_KB,
            ),
            quantization_config=qe.ScalarQuantizationConfig(
                qe.ScalarType.Int8, quantile=0.99, always_ram=True
            ),
            optimizers=self._optimizers,
        )

    def _require(self) -> Any:
        if self._shard is None:
            raise UnavailableError(f"vector store {self.path} is not open")
        return self._shard

    def _point(self, p: VectorPoint) -> Any:
        payload = {
            "chunk_id": p.chunk_id,
            "document_id": p.document_id,
            "entity_types": list(p.entity_types),
        }
        return qe.Point(point_id(p.chunk_id), checked_vector(p.vector, self._dimension), payload)

    async def _run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        self._in_flight += 1
        self._idle.clear()
        try:
            with _translated(what):
                return await asyncio.to_thread(fn, *args)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()


def _apply(shard: Any, op: Any) -> None:
    """One write, then whatever indexing it made due (a no-op most of the time)."""
    shard.update(op)
    shard.optimize()


def _close_shard(shard: Any) -> None:
    shard.flush()
    shard.close()


def _open_error(path: Path, dimension: int, exc: Exception) -> KGError:
    text = str(exc)
    if "ncompatible" in text:
        return ConfigurationError(
            f"vector store {path} holds vectors of another shape than dimension "
            f"{dimension} (delete it or point KG_VECTOR_URL elsewhere): {text}",
            path=str(path),
        )
    if "WouldBlock" in text:
        return ConflictError(f"vector store {path} is open in another process: {text}")
    return BackendError(f"cannot open vector store {path}: {text}")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """The engine raises bare ``Exception``; ours pass through, the rest become ours."""
    try:
        yield
    except KGError:
        raise
    except Exception as exc:
        raise BackendError(f"qdrant edge {what} failed: {exc}") from exc


def _match_any(key: str, values: Sequence[str]) -> Any:
    return qe.FieldCondition(key=key, match=qe.MatchAny(any=list(values)))


def _conditions(filter: ChunkFilter) -> list[Any] | None:
    """The filter's conditions (AND), ``[]`` for none, ``None`` when nothing can match."""
    conditions = []
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


def _hit(point: Any) -> ChunkHit:
    payload = point.payload or {}
    return ChunkHit(
        chunk_id=str(payload["chunk_id"]),
        document_id=str(payload["document_id"]),
        score=float(point.score),
    )
