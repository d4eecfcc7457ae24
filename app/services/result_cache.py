"""Results of reads (search hits, answers) cached under the graph's version.

The key joins the graph store's ``version()`` to the arguments, so a write or a delete
anywhere (any process sharing the store) moves every later read to new keys: a cached
result is never stale, and old entries simply expire. The version is one cheap read per
request; it is what lets the cache be in-process even when workers in other processes
write. A failing cache (Redis down) costs the computation, never the request.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from app.domain.errors import KGError
from app.ports.cache import Cache
from app.ports.graph_store import GraphStore

T = TypeVar("T")

log = structlog.get_logger(__name__)


class ResultCache:
    def __init__(self, cache: Cache | None, graph: GraphStore, ttl: float) -> None:
        self._cache = cache
        self._graph = graph
        self._ttl = ttl

    async def key(self, *parts: object) -> str:
        """The cache key of a read: the graph version and a digest of ``parts``."""
        version = await self._graph.version()
        digest = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
        return f"v{version}:{digest}"

    async def get_or_compute(
        self,
        parts: tuple[object, ...],
        compute: Callable[[], Awaitable[T]],
        encode: Callable[[T], object],
        decode: Callable[[object], T],
    ) -> T:
        """The cached result of the read named by ``parts``, or ``compute()`` stored."""
        if self._cache is None:
            return await compute()
        key = await self.key(*parts)
        cached = await self.read(key)
        if cached is not None:
            try:
                return decode(cached)
            except (KeyError, TypeError, ValueError) as exc:  # written by another version
                log.warning("cache.undecodable", key=key, error=str(exc))
        result = await compute()
        await self.write(key, encode(result))
        return result

    async def read(self, key: str) -> object:
        if self._cache is None:
            return None
        try:
            return await self._cache.get(key)
        except KGError as exc:
            log.warning("cache.read_failed", error=exc.message)
            return None

    async def write(self, key: str, value: object) -> None:
        if self._cache is None:
            return
        try:
            await self._cache.set(key, value, ttl=self._ttl)
        except KGError as exc:
            log.warning("cache.write_failed", error=exc.message)
