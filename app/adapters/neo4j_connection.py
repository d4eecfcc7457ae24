"""One driver (one connection pool) to a Neo4j database, for the stores that use it.

The graph store and the vector store may live in one database: the composition root
then hands both the same connection, so a process keeps one pool, not two. The first
``acquire`` opens the driver and the last ``release`` closes it; a borrowed driver (one
the caller owns) is never closed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress

import neo4j

from app.adapters.neo4j_support import (
    DEFAULT_ACQUIRE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POOL_SIZE,
    DEFAULT_QUERY_TIMEOUT,
    DEFAULT_RETRY_TIME,
    check_positive,
    driver_factory,
    translate_errors,
)
from app.domain.errors import KGError


class Neo4jConnection:
    """The Neo4j server at ``url`` (credentials may be in the URL); ``database`` None
    means the server's default. ``query_timeout`` bounds every transaction on the
    server; ``pool_size`` and ``acquire_timeout`` size the pool. Settings are checked
    here, so a bad one fails at construction, before anything connects."""

    def __init__(
        self,
        url: str,
        user: str | None = None,
        password: str | None = None,
        *,
        database: str | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        retry_time: float = DEFAULT_RETRY_TIME,
    ) -> None:
        target, connect = driver_factory(
            url,
            user,
            password,
            pool_size=pool_size,
            acquire_timeout=acquire_timeout,
            connect_timeout=connect_timeout,
            retry_time=retry_time,
        )
        self._setup(connect, True, target.where, target.password, database, query_timeout)

    @classmethod
    def borrowed(
        cls,
        driver: neo4j.AsyncDriver,
        *,
        database: str | None = None,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
        where: str = "Neo4j",
    ) -> Neo4jConnection:
        """A connection on a driver the caller owns: it is never closed here."""
        connection = cls.__new__(cls)
        connection._setup(lambda: driver, False, where, None, database, query_timeout)
        return connection

    def _setup(
        self,
        connect: Callable[[], neo4j.AsyncDriver],
        owns_driver: bool,
        where: str,
        secret: str | None,
        database: str | None,
        query_timeout: float,
    ) -> None:
        check_positive(query_timeout=query_timeout)
        self.where = where
        self.secret = secret
        self.database = database
        self.timeout = query_timeout
        self._connect = connect
        self._owns_driver = owns_driver
        self._driver: neo4j.AsyncDriver | None = None
        self._users = 0
        self._lock = asyncio.Lock()

    async def acquire(self) -> neo4j.AsyncDriver:
        """The driver, opened by the first user (no connection is made until used)."""
        async with self._lock:
            if self._driver is None:
                self._driver = self._connect()
            self._users += 1
            return self._driver

    async def release(self) -> None:
        """One user less; the last one closes a driver this connection owns."""
        async with self._lock:
            self._users = max(0, self._users - 1)
            driver = self._driver
            if self._users or driver is None:
                return
            self._driver = None
            if self._owns_driver:
                with self.translated("closing the connection"):
                    await driver.close()

    async def abandon(self) -> None:
        """``release`` after a failed start: closing errors must not hide its cause."""
        with suppress(KGError, neo4j.exceptions.DriverError, OSError):
            await self.release()

    @property
    def users(self) -> int:
        return self._users

    def translated(self, action: str) -> AbstractContextManager[None]:
        return translate_errors(action, self.where, self.secret)
