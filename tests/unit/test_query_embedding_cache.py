"""The query embedding is computed once per model and text, then read from the cache;
a failing cache costs the computation, never the search. The embedder here is a
counting stand-in (this tests the service's use of it); the cache is the real adapter."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import pytest

from app.adapters.aiocache_cache import AiocacheCache
from app.config import LimitSettings
from app.domain.errors import UnavailableError
from app.services.search import SearchService, pack_vector, unpack_vector


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
    # stored as float32, the model's precision: a miss returns what a hit will
    assert again == first == [17.0, 0.5, struct.unpack("<f", struct.pack("<f", -1 / 3))[0]]
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


@pytest.mark.parametrize(
    "stored",
    [
        [17.0, 0.5, -0.25],  # the JSON list an older server cached
        pack_vector([1.0, 2.0]),  # another dimension
        "not base64!",
        None,
        42,
    ],
)
async def test_a_cached_value_of_another_form_is_a_miss(stored: object) -> None:
    assert unpack_vector(stored, 3) is None
    cache = AiocacheCache("memory://", namespace="test")
    embedder = CountingEmbedder()
    search = service(embedder, cache)
    key = next(iter(await keys_after_one_query(search, cache)))
    if stored is None:
        await cache.delete(key)  # expired
    else:
        await cache.set(key, stored)
    assert await search.embed_query("who founded Apple") == [17.0, 0.5, pytest.approx(-1 / 3)]
    assert len(embedder.calls) == 2  # computed again, not taken from the odd value
    await cache.close()


async def keys_after_one_query(search: SearchService, cache: AiocacheCache) -> list[str]:
    await search.embed_query("who founded Apple")
    backend = cache._backend
    return [k.split(":", 1)[1] for k in backend._cache]


def test_packed_vectors_round_trip_float32_values_exactly() -> None:
    values = [0.0, -0.0, 1.0, -1.5, 3.4028234663852886e38, 1.401298464324817e-45]
    assert unpack_vector(pack_vector(values), len(values)) == values


async def test_an_embedder_giving_the_wrong_dimension_fails_and_caches_nothing() -> None:
    from app.domain.errors import BackendError

    class Short(CountingEmbedder):
        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            return [[1.0, 2.0] for _ in texts]

    cache = AiocacheCache("memory://", namespace="test")
    search = service(Short(), cache)
    with pytest.raises(BackendError, match="wrong vector dimension"):
        await search.embed_query("who founded Apple")
    assert not cache._backend._cache
    await cache.close()
