"""Cache on aiocache: in-process (``memory://``) or Redis (``redis://``, ``rediss://``).

Both backends store JSON text, so they behave alike: a value comes back as a copy, as
JSON round-trips it (tuples come back as lists, dict keys as strings), and a value JSON
cannot encode is a bug in the caller (``TypeError``), never silently pickled. JSON rather
than pickle also means a shared Redis holds nothing a reader would execute.

Keys are ``<namespace>:<key>``. ``namespaced`` gives another view of the same backend
(one Redis connection pool) under another namespace; only the cache built from the URL
closes the backend. Lookups are counted in ``kg_cache_hits_total`` /
``kg_cache_misses_total`` labelled by namespace.

``ttl`` (seconds, > 0) applies to one value; ``None`` uses ``default_ttl``; a
``default_ttl`` of ``None`` keeps values until deleted. ``timeout`` bounds each Redis
operation; ``memory://`` has none (see ``_memory_backend``). ``memory://`` is per instance:
two processes, or two caches built from the URL, do not share it.

Driver failures become ``UnavailableError`` (Redis down, slow or loading; retryable),
``ConfigurationError`` (refused credentials) or ``BackendError`` (anything else).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis.exceptions
from aiocache import SimpleMemoryCache
from aiocache.backends.redis import RedisCache
from aiocache.serializers import BaseSerializer

from app.domain.errors import (
    BackendError,
    BadInputError,
    ConfigurationError,
    UnavailableError,
)
from app.observability.metrics import record_cache_lookup

T = TypeVar("T")

DEFAULT_PORT = 6379


class _JsonSerializer(BaseSerializer):  # type: ignore[misc]
    """stdlib JSON both ways (aiocache's would use ujson if present, which rounds floats)."""

    def dumps(self, value: Any) -> str:
        try:
            return json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"cache values must be JSON-serialisable: {exc}") from exc

    def loads(self, value: str | bytes | None) -> Any:
        if value is None:
            return None
        return json.loads(value)


def _key(key: str, namespace: str | None = None) -> str:
    return f"{namespace}:{key}"


def _memory_backend() -> Any:
    # No per-operation timeout: a dict lookup cannot hang, and aiocache would run every
    # operation as a task under asyncio.wait_for (a task and a timer per lookup).
    return SimpleMemoryCache(serializer=_JsonSerializer(), key_builder=_key, timeout=None)


def _redis_backend(url: str, timeout: float) -> Any:
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_PORT
        db_text = parts.path.strip("/") or "0"
        db = int(db_text)
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL (port or db): {exc}") from exc
    pool_kwargs: dict[str, Any] = {}
    if parts.username:
        pool_kwargs["username"] = unquote(parts.username)
    return RedisCache(
        serializer=_JsonSerializer(),
        key_builder=_key,
        timeout=timeout,
        endpoint=parts.hostname or "127.0.0.1",
        port=port,
        db=db,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
        create_connection_timeout=timeout,
        connection_pool_kwargs=pool_kwargs,
    )


@asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    """Driver errors to ours, chained."""
    try:
        yield
    except (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError) as exc:
        raise ConfigurationError(f"cache {what}: credentials refused: {exc}") from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise UnavailableError(f"cache {what}: Redis unreachable: {exc}") from exc
    except TimeoutError as exc:  # aiocache's per-operation timeout (asyncio.wait_for)
        raise UnavailableError(f"cache {what}: timed out") from exc
    except redis.exceptions.RedisError as exc:
        raise BackendError(f"cache {what}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise BackendError(f"cache {what}: stored value is not JSON") from exc


class AiocacheCache:
    """The Cache port on aiocache; see the module docstring."""

    def __init__(
        self,
        url: str,
        namespace: str = "kg",
        default_ttl: float | None = 300,
        *,
        timeout: float = 5.0,
    ) -> None:
        _check_namespace(namespace)
        if default_ttl is not None and default_ttl <= 0:
            raise ConfigurationError(f"default_ttl must be positive or None, got {default_ttl}")
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout}")
        scheme = urlsplit(url).scheme
        if scheme == "memory":
            backend = _memory_backend()
        elif scheme in ("redis", "rediss"):
            backend = _redis_backend(url, timeout)
        else:
            raise ConfigurationError(f"cache URL scheme {scheme or '(none)'!r} is not supported")
        self.namespace = namespace
        self.default_ttl = default_ttl
        self._backend = backend
        self._owner = True
        self._is_redis = scheme != "memory"

    def namespaced(self, namespace: str) -> AiocacheCache:
        """The same backend under another namespace (closing it leaves the backend open)."""
        _check_namespace(namespace)
        view = object.__new__(AiocacheCache)
        view.namespace = namespace
        view.default_ttl = self.default_ttl
        view._backend = self._backend
        view._owner = False
        view._is_redis = self._is_redis
        return view

    async def _run(self, what: str, op: Awaitable[T]) -> T:
        async with _translated(what):
            return await op

    async def get(self, key: str) -> Any | None:
        value = await self._run("get", self._backend.get(key, namespace=self.namespace))
        record_cache_lookup(self.namespace, hit=value is not None)
        return value

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        if ttl is not None and ttl <= 0:
            raise BadInputError(f"ttl must be positive, got {ttl}")
        seconds = ttl if ttl is not None else self.default_ttl
        await self._run(
            "set",
            self._backend.set(
                key,
                value,
                ttl=None if seconds is None else float(seconds),
                namespace=self.namespace,
            ),
        )

    async def delete(self, key: str) -> None:
        await self._run("delete", self._backend.delete(key, namespace=self.namespace))

    async def close(self) -> None:
        if not self._owner:
            return
        if self._is_redis:
            # aiocache's close() calls redis' deprecated close(); aclose() is the current API.
            await self._run("close", self._backend.client.aclose())
        else:
            # aiocache's clear() forgets expiry timers without cancelling them.
            for handle in self._backend._handlers.values():
                handle.cancel()
            await self._run("close", self._backend.clear())


def _check_namespace(namespace: str) -> None:
    if not namespace or ":" in namespace:
        raise ConfigurationError(f"namespace must be non-empty without ':', got {namespace!r}")
