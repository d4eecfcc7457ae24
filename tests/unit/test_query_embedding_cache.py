"""The query embedding is computed once per model and text, then read from the cache;
a failing cache costs the computation, never the search. The embedder here is a
counting stand-in (this tests the service's use of it); the cache is the real adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from app.adapters.aiocache_cache import AiocacheCache
from app.config import LimitSettings
from app.domain.errors import UnavailableError
from app.services.search import SearchService


class CountingEmbedder:
    name = "counting-test-model"
    dimension = 3
    max_tokens = 16
    loaded = True

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def load(self) -> None:
        return None

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [[float(len(t)), 0.5, -1.0 / 3.0] for t in texts]


class BrokenCache:
    """The Cache port, with its backend down."""

    async def get(self, key: str) -> Any:
        raise UnavailableError("Redis at 127.0.0.1:9 is unreachable (simulated)")

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        raise UnavailableError("Redis at 127.0.0.1:9 is unreachable (simulated)")

    async def delete(self, key: str) -> None:
        raise UnavailableError("down")

    async def close(self) -> None:
        return None

    def namespaced(self, namespace: str) -> BrokenCache:
        return self


def service(embedder: CountingEmbedder, cache: Any) -> SearchService:
    # The stores are never reached by embed_query.
    return SearchService(None, None, embedder, LimitSettings(), cache)  # type: ignore[arg-type]


async def test_a_query_is_embedded_once_then_read_from_the_cache() -> None:
    cache = AiocacheCache("memory://", namespace="test")
    embedder = CountingEmbedder()
    search = service(embedder, cache.namespaced("search"))
    first = await search.embed_query("who founded Apple")
    again = await search.embed_query("who founded Apple")
    assert again == first == [17.0, 0.5, -1.0 / 3.0]  # exact through JSON
    assert embedder.calls == [["who founded Apple"]]
    await search.embed_query("who founded Apple?")  # another text: computed
    assert len(embedder.calls) == 2
    await cache.close()


async def test_another_model_does_not_read_this_models_vectors() -> None:
    cache = AiocacheCache("memory://", namespace="test")
    first, second = CountingEmbedder(), CountingEmbedder()
    second.name = "another-model"
    await service(first, cache).embed_query("same text")
    await service(second, cache).embed_query("same text")
    assert len(first.calls) == len(second.calls) == 1
    await cache.close()


@pytest.mark.parametrize("cache", [BrokenCache(), None])
async def test_without_a_working_cache_the_embedding_is_computed(cache: Any) -> None:
    embedder = CountingEmbedder()
    search = service(embedder, cache)
    assert await search.embed_query("a") == await search.embed_query("a")
    assert len(embedder.calls) == 2
