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
import hashlib
from collections.abc import Sequence
from enum import StrEnum

import structlog

from app.config import LimitSettings
from app.domain.errors import BadInputError, KGError
from app.domain.models import ChunkFilter, ChunkHit
from app.ports.cache import Cache
from app.ports.graph_store import GraphStore
from app.ports.models import Embedder
from app.ports.vector_store import VectorStore
from app.services.validation import check_k

MAX_QUERY_CHARS = 2_000
# Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): the constant they
# found robust; it keeps the first ranks from dominating the fused order.
RRF_K = 60
# How deep each list is read before fusing: a chunk ranked low in both lists can still
# make the top k, so more than k is asked of each.
HYBRID_DEPTH = 50
# A query's embedding depends on the model and the text only, so it is cached across
# requests and processes (the cache's backend); the time to live bounds what a flood of
# distinct queries can hold.
EMBEDDING_TTL_SECONDS = 600.0

log = structlog.get_logger(__name__)


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
        self._cache = cache

    async def search(
        self, query: str, k: int, mode: SearchMode, filter: ChunkFilter
    ) -> list[ChunkHit]:
        query = query.strip()
        if not query:
            raise BadInputError("query is empty: say what to search for")
        if len(query) > MAX_QUERY_CHARS:
            raise BadInputError(
                f"query is {len(query)} characters, over the limit of {MAX_QUERY_CHARS}"
            )
        check_k(k, self._limits)
        if mode is SearchMode.VECTOR:
            return await self._by_vector(query, k, filter)
        if mode is SearchMode.KEYWORD:
            return await self._graph.keyword_search(query, k, filter)
        depth = max(k, HYBRID_DEPTH)
        by_vector, by_words = await asyncio.gather(
            self._by_vector(query, depth, filter),
            self._graph.keyword_search(query, depth, filter),
        )
        return fuse([by_vector, by_words], k)

    async def _by_vector(self, query: str, k: int, filter: ChunkFilter) -> list[ChunkHit]:
        return await self._vectors.search(await self.embed_query(query), k, filter)

    async def embed_query(self, query: str) -> list[float]:
        """The query's embedding, from the cache when another request computed it. A
        cache that fails (Redis down) costs the computation, never the search."""
        key = (
            "query-embedding:"
            + hashlib.sha256(f"{self._embedder.name}\0{query}".encode()).hexdigest()
        )
        cached = await self._cached(key)
        if isinstance(cached, list) and len(cached) == self._embedder.dimension:
            return [float(x) for x in cached]
        vector = (await asyncio.to_thread(self._embedder.embed, [query]))[0]
        if self._cache is not None:
            try:
                await self._cache.set(key, list(vector), ttl=EMBEDDING_TTL_SECONDS)
            except KGError as exc:
                log.warning("cache.write_failed", error=exc.message)
        return vector

    async def _cached(self, key: str) -> object:
        if self._cache is None:
            return None
        try:
            return await self._cache.get(key)
        except KGError as exc:
            log.warning("cache.read_failed", error=exc.message)
            return None


def fuse(rankings: Sequence[Sequence[ChunkHit]], k: int) -> list[ChunkHit]:
    """Reciprocal rank fusion of ranked lists: each chunk scores the sum over the lists
    of ``1 / (RRF_K + rank)`` (rank from 1); the best ``k``, ties broken by the best
    single rank, then by chunk id, so the order is stable."""
    scores: dict[str, float] = {}
    best: dict[str, int] = {}
    documents: dict[str, str] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            best[hit.chunk_id] = min(best.get(hit.chunk_id, rank), rank)
            documents[hit.chunk_id] = hit.document_id
    order = sorted(scores, key=lambda c: (-scores[c], best[c], c))
    return [ChunkHit(chunk_id=c, document_id=documents[c], score=scores[c]) for c in order[:k]]
