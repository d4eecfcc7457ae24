"""Search over chunks: by meaning (VECTOR), by words (KEYWORD), or both (HYBRID).

Scores: VECTOR is the cosine similarity of the query and chunk embeddings (-1..1);
KEYWORD is the store's BM25-style relevance (positive, higher is better, comparable only
within one result list); HYBRID is the reciprocal rank fusion of the two lists (see
``fuse``): the sum of ``1 / (RRF_K + rank)`` over the lists a chunk is in, at most
``2 / (RRF_K + 1)`` (about 0.033). The filters go to each store, so both lists hold only
chunks that pass them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sys
from array import array
from collections.abc import Sequence
from enum import StrEnum

from app.config import LimitSettings
from app.domain.errors import BackendError, BadInputError
from app.domain.models import ChunkFilter, ChunkHit
from app.ports.cache import Cache
from app.ports.graph_store import GraphStore
from app.ports.models import Embedder
from app.ports.vector_store import VectorStore
from app.services.result_cache import ResultCache
from app.services.validation import check_k

MAX_QUERY_CHARS = 2_000
# Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): the constant they
# found robust; it keeps the first ranks from dominating the fused order.
RRF_K = 60
# How deep each list is read before fusing: a chunk ranked low in both lists can still
# make the top k, so more than k is asked of each.
HYBRID_DEPTH = 50
# Query embeddings (keyed by model and text) and search results (keyed by the graph
# version too, so never stale) are cached across requests and processes (the cache's
# backend); the time to live bounds what a flood of distinct queries can hold.
RESULT_TTL_SECONDS = 600.0


class SearchMode(StrEnum):
    VECTOR = "VECTOR"
    KEYWORD = "KEYWORD"
    HYBRID = "HYBRID"


class SearchService:
    def __init__(
        self,
        graph: GraphStore,
        vectors: VectorStore,
        embedder: Embedder,
        limits: LimitSettings,
        cache: Cache | None = None,
    ) -> None:
        self._graph = graph
        self._vectors = vectors
        self._embedder = embedder
        self._limits = limits
        self._results = ResultCache(cache, graph, RESULT_TTL_SECONDS)

    async def search(
        self, query: str, k: int, mode: SearchMode, filter: ChunkFilter
    ) -> list[ChunkHit]:
        """The best ``k`` chunks for ``query``; cached under the graph version."""
        query = check_query(query, "query")
        check_k(k, self._limits)
        return await self._results.get_or_compute(
            ("search", query, k, mode.value, filter.document_ids, filter.entity_types),
            lambda: self.run(query, k, mode, filter),
            encode_hits,
            decode_hits,
        )

    async def run(
        self, query: str, k: int, mode: SearchMode, filter: ChunkFilter
    ) -> list[ChunkHit]:
        """The search itself, on checked arguments, without the result cache."""
        if mode is SearchMode.VECTOR:
            return await self._vectors.search(await self.embed_query(query), k, filter)
        if mode is SearchMode.KEYWORD:
            return await self._graph.keyword_search(query, k, filter)
        depth = max(k, HYBRID_DEPTH)
        by_vector, by_words = await asyncio.gather(
            self.run(query, depth, SearchMode.VECTOR, filter),
            self._graph.keyword_search(query, depth, filter),
        )
        return fuse([by_vector, by_words], k)

    async def nearest(self, vector: list[float], k: int, filter: ChunkFilter) -> list[ChunkHit]:
        """The ``k`` chunks nearest an embedding computed before (``embed_query``)."""
        return await self._vectors.search(vector, k, filter)

    async def embed_query(self, query: str) -> list[float]:
        """The query's embedding, from the cache when another request computed it (the
        key is the model and the text: no graph version). Cached as packed float32, the
        model's own precision: exact, and a fraction of the cost of a JSON list."""
        key = (
            "query-embedding-f32:"
            + hashlib.sha256(f"{self._embedder.name}\0{query}".encode()).hexdigest()
        )
        cached = unpack_vector(await self._results.read(key), self._embedder.dimension)
        if cached is not None:
            return cached
        packed = pack_vector((await asyncio.to_thread(self._embedder.embed, [query]))[0])
        # What the cache gives later requests, so a miss and a hit search alike.
        vector = unpack_vector(packed, self._embedder.dimension)
        if vector is None:  # an embedder broke the port's contract on dimension
            raise BackendError(f"embedder {self._embedder.name!r}: wrong vector dimension")
        await self._results.write(key, packed)
        return vector


def check_query(text: str, what: str) -> str:
    """``text`` stripped, or a BadInputError when it is empty or too long."""
    text = text.strip()
    if not text:
        raise BadInputError(f"{what} is empty: say what to search for")
    if len(text) > MAX_QUERY_CHARS:
        raise BadInputError(
            f"{what} is {len(text)} characters, over the limit of {MAX_QUERY_CHARS}"
        )
    return text


def pack_vector(vector: Sequence[float]) -> str:
    """``vector`` as base64 of little-endian float32: what a JSON cache stores cheaply."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def unpack_vector(value: object, dimension: int) -> list[float] | None:
    """The vector ``pack_vector`` stored, or ``None`` for anything else (a miss, another
    format, another dimension)."""
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    if len(raw) != 4 * dimension:
        return None
    packed = array("f")
    packed.frombytes(raw)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tolist()


def encode_hits(hits: Sequence[ChunkHit]) -> list[list[object]]:
    return [[h.chunk_id, h.document_id, h.score] for h in hits]


def decode_hits(value: object) -> list[ChunkHit]:
    if not isinstance(value, list):
        raise TypeError("cached hits are not a list")
    return [ChunkHit(chunk_id=str(c), document_id=str(d), score=float(s)) for c, d, s in value]


def fuse(
    rankings: Sequence[Sequence[ChunkHit]], k: int, weights: Sequence[float] | None = None
) -> list[ChunkHit]:
    """Reciprocal rank fusion of ranked lists: each chunk scores the sum over the lists
    of ``weight / (RRF_K + rank)`` (rank from 1, weight 1 unless given); the best ``k``,
    ties broken by the best single rank, then by chunk id, so the order is stable."""
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    documents: dict[str, str] = {}
    for n, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[n]
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + weight / (RRF_K + rank)
            best[hit.chunk_id] = min(best.get(hit.chunk_id, rank), rank)
            documents[hit.chunk_id] = hit.document_id
    order = sorted(scores, key=lambda c: (-scores[c], best[c], c))
    return [ChunkHit(chunk_id=c, document_id=documents[c], score=scores[c]) for c in order[:k]]
