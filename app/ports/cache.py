"""Cache: short-lived values shared by the processes that share its backend."""

from __future__ import annotations

from typing import Any, Protocol


class Cache(Protocol):
    async def get(self, key: str) -> Any | None: ...

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...

    def namespaced(self, namespace: str) -> Cache:
        """Another view of the same backend whose keys live under ``namespace`` (one
        per use, so uses never collide and their hit ratios are counted apart)."""
