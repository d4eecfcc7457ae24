"""Search over chunks: by meaning (VECTOR) or by words (KEYWORD).

Scores: VECTOR is the cosine similarity of the query and chunk embeddings (-1..1);
KEYWORD is the store's BM25-style relevance (positive, higher is better, comparable only
within one result list). HYBRID arrives with the retrieval issue and is refused clearly
until then.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

from app.config import LimitSettings
from app.domain.errors import BadInputError
from app.domain.models import ChunkFilter, ChunkHit
from app.ports.graph_store import GraphStore
from app.ports.models import Embedder
from app.ports.vector_store import VectorStore
from app.services.validation import check_k

MAX_QUERY_CHARS = 2_000


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
    ) -> None:
        self._graph = graph
        self._vectors = vectors
        self._embedder = embedder
        self._limits = limits

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
            vector = await self.embed_query(query)
            hits = await self._vectors.search(vector, k, filter)
        elif mode is SearchMode.KEYWORD:
            hits = await self._graph.keyword_search(query, k, filter)
        else:
            raise BadInputError("search mode HYBRID is not available yet: use VECTOR or KEYWORD")
        return hits

    async def embed_query(self, query: str) -> list[float]:
        return (await asyncio.to_thread(self._embedder.embed, [query]))[0]
