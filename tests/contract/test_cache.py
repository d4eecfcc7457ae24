"""Cache contract: one suite for every backend in ``CACHES``.

A factory takes a namespace and a default TTL and returns a ready cache. Redis joins when
``KG_TEST_REDIS_URL`` names a running server (e.g. ``redis://127.0.0.1:6379/15``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.adapters.aiocache_cache import AiocacheCache
from app.domain.errors import (
    BadInputError,
    ConfigurationError,
    UnavailableError,
)
from app.observability.metrics import sample_value
from app.ports.cache import Cache

CacheFactory = Callable[[str, float | None], AiocacheCache]

CACHES: dict[str, CacheFactory] = {
    "memory": lambda namespace, ttl: AiocacheCache("memory://", namespace, ttl),
}
_REDIS_URL = os.environ.get("KG_TEST_REDIS_URL", "")
if _REDIS_URL:
    CACHES["redis"] = lambda namespace, ttl: AiocacheCache(_REDIS_URL, namespace, ttl)


@pytest.fixture(params=sorted(CACHES))
async def make(request: pytest.FixtureRequest) -> AsyncIterator[CacheFactory]:
    """Builds caches of one backend; each test gets fresh namespaces, all closed after."""
    built: list[AiocacheCache] = []

    def factory(namespace: str, ttl: float | None = 300) -> AiocacheCache:
        cache = CACHES[request.param](f"{namespace}-{uuid.uuid4().hex[:8]}", ttl)
        built.append(cache)
        return cache

    yield factory
    for cache in built:
        await cache.close()


@pytest.fixture
def cache(make: CacheFactory) -> Cache:
    return make("t", 300)


VALUES: list[Any] = [
    {"a": 1, "nested": {"list": [1, 2.5, "x", None, True]}},
    [1, "two", 3.25, {"k": "v"}],
    3.141592653589793,
    0.1 + 0.2,
    -7,
    "unicode: Zürich → 東京 🚀",
    "",
    True,
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
async def test_values_round_trip(cache: Cache, value: Any) -> None:
    await cache.set("k", value)
    got = await cache.get("k")
    assert got == value
    assert type(got) is type(value)


async def test_missing_key_is_none(cache: Cache) -> None:
    assert await cache.get("never-set") is None


async def test_set_overwrites_and_delete_removes(cache: Cache) -> None:
    await cache.set("k", {"v": 1})
    await cache.set("k", {"v": 2})
    assert await cache.get("k") == {"v": 2}
    await cache.delete("k")
    assert await cache.get("k") is None
    await cache.delete("k")  # deleting a missing key is fine


async def test_returned_values_are_copies(cache: Cache) -> None:
    value = {"items": [1]}
    await cache.set("k", value)
    value["items"].append(2)
    got = await cache.get("k")
    assert got == {"items": [1]}
    got["items"].append(3)
    assert await cache.get("k") == {"items": [1]}


async def test_json_round_trip_turns_tuples_into_lists(cache: Cache) -> None:
    await cache.set("k", {"pair": (1, 2), 3: "int key"})
    assert await cache.get("k") == {"pair": [1, 2], "3": "int key"}


async def test_ttl_expires_a_value(cache: Cache) -> None:
    await cache.set("short", "v", ttl=0.2)
    await cache.set("long", "v", ttl=30)
    assert await cache.get("short") == "v"
    await asyncio.sleep(0.35)
    assert await cache.get("short") is None
    assert await cache.get("long") == "v"


async def test_default_ttl_applies_when_none_is_given(make: CacheFactory) -> None:
    cache = make("ttl", 0.2)
    await cache.set("k", "v")
    await asyncio.sleep(0.35)
    assert await cache.get("k") is None


async def test_no_default_ttl_keeps_values(make: CacheFactory) -> None:
    cache = make("forever", None)
    await cache.set("k", "v")
    await asyncio.sleep(0.05)
    assert await cache.get("k") == "v"


async def test_overwriting_resets_the_ttl(cache: Cache) -> None:
    await cache.set("k", "old", ttl=0.2)
    await cache.set("k", "new", ttl=30)
    await asyncio.sleep(0.35)
    assert await cache.get("k") == "new"


async def test_namespaces_do_not_see_each_other(make: CacheFactory) -> None:
    first = make("one", 300)
    second = first.namespaced("two")
    await first.set("shared-key", "first")
    assert await second.get("shared-key") is None
    await second.set("shared-key", "second")
    assert await first.get("shared-key") == "first"
    await second.delete("shared-key")
    assert await first.get("shared-key") == "first"
    await second.close()  # a view does not close the backend it shares
    assert await first.get("shared-key") == "first"


async def test_namespace_prefix_is_not_ambiguous(make: CacheFactory) -> None:
    # "ab" + "c" and "a" + "bc" must not meet in one key space.
    ab = make("ab", 300)
    a = ab.namespaced(ab.namespace[:-1])
    await ab.set("c", 1)
    assert await a.get(ab.namespace[-1] + "c") is None


async def test_bad_ttl_is_refused(cache: Cache) -> None:
    for ttl in (0, -1.5):
        with pytest.raises(BadInputError, match="ttl"):
            await cache.set("k", "v", ttl=ttl)


async def test_value_json_cannot_encode_is_a_type_error(cache: Cache) -> None:
    with pytest.raises(TypeError, match="JSON"):
        await cache.set("k", {"when": object()})
    assert await cache.get("k") is None


async def test_lookups_are_counted_per_namespace(cache: AiocacheCache) -> None:
    labels = {"cache": cache.namespace}
    await cache.set("k", "v")
    await cache.get("k")
    await cache.get("k")
    await cache.get("missing")
    assert sample_value("kg_cache_hits_total", labels) == 2
    assert sample_value("kg_cache_misses_total", labels) == 1


# --- construction and failures (no backend needed) ----------------------------------


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("memcached://x", {}, "scheme"),
        ("nothing", {}, "scheme"),
        ("memory://", {"namespace": ""}, "namespace"),
        ("memory://", {"namespace": "a:b"}, "namespace"),
        ("memory://", {"default_ttl": 0}, "default_ttl"),
        ("memory://", {"timeout": 0}, "timeout"),
        ("redis://host:notaport/0", {}, "Redis URL"),
        ("redis://host:6379/zero", {}, "Redis URL"),
    ],
)
def test_bad_configuration_is_refused(url: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        AiocacheCache(url, **kwargs)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_redis_is_unavailable_and_retryable() -> None:
    cache = AiocacheCache(f"redis://:pw@127.0.0.1:{_closed_port()}/0", timeout=2)
    for operation in (cache.get("k"), cache.set("k", 1), cache.delete("k")):
        with pytest.raises(UnavailableError) as caught:
            await operation
        assert caught.value.retryable
        assert "pw" not in str(caught.value)
        assert caught.value.__cause__ is not None  # chained from the driver's error
    await cache.close()
