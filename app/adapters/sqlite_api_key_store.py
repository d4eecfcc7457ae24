"""ApiKeyStore on a SQLite file of its own: the embedded default for API keys.

The keys live in their own file (say ``<data_dir>/api_keys.sqlite3``), stamped with this
store's ``application_id``, so the graph's or the jobs' file is refused at start with a
``ConfigurationError``. Only a salt and a digest of each secret are stored, never the
secret. Every call is one statement in autocommit mode, so several processes may share
the file (WAL, ``busy_timeout``); ``revoke`` is one ``UPDATE ... RETURNING``, so two
revokes racing keep the first time. Creating a key that is recorded already with the
same digest (a retried create) is a no-op, as on Redis; any other key with a taken id
is a ``ConflictError``.

Keys come back oldest first, and keys created at the same instant in id order: the
order the Redis adapter gives too.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from app.adapters.sqlite_support import (
    DEFAULT_BUSY_TIMEOUT_MS,
    Migration,
    migrate,
    open_connection,
    translate_errors,
)
from app.adapters.stored_text import (
    check_encodable,
    decode_optional_time,
    decode_time,
    encodable,
    encode_optional_time,
    encode_time,
)
from app.domain.auth import ApiKey, Role
from app.domain.errors import BackendError, ConflictError, UnavailableError
from app.ports.api_key_store import StoredApiKey

API_KEY_APPLICATION_ID = 0x4B47414B  # "KGAK"

API_KEY_MIGRATIONS: tuple[Migration, ...] = (
    (
        """
        CREATE TABLE api_keys (
            seq         INTEGER PRIMARY KEY,
            id          TEXT NOT NULL UNIQUE,
            name        TEXT NOT NULL,
            role        TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            created_by  TEXT NOT NULL,
            revoked_at  TEXT,
            salt        BLOB NOT NULL,
            digest      BLOB NOT NULL
        )
        """,
        "CREATE INDEX api_keys_created ON api_keys (created_at, id)",
        # Only revoked keys are indexed: revoked_since() polls this often.
        "CREATE INDEX api_keys_revoked ON api_keys (revoked_at, id) WHERE revoked_at IS NOT NULL",
    ),
)

_KEY_COLUMNS = "id, name, role, created_at, created_by, revoked_at"

_INSERT = """
    INSERT INTO api_keys (id, name, role, created_at, created_by, revoked_at, salt, digest)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING
"""
_DIGEST = "SELECT digest FROM api_keys WHERE id = ?"
_GET = f"SELECT {_KEY_COLUMNS}, salt, digest FROM api_keys WHERE id = ?"  # noqa: S608
_ALL = f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"  # noqa: S608
_ACTIVE = f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id"  # noqa: S608
# One statement: a key revoked already keeps its first time, and the row comes back as is.
_REVOKE = f"""
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?
    RETURNING {_KEY_COLUMNS}
"""  # noqa: S608
_REVOKED_SINCE = """
    SELECT id FROM api_keys WHERE revoked_at >= ? ORDER BY revoked_at, id
"""


class SqliteApiKeyStore:
    """API keys in one SQLite file at ``path`` (parent directories are created)."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._lifecycle = asyncio.Lock()

    async def start(self) -> None:
        """Open the file and migrate its schema; a second call does nothing."""
        async with self._lifecycle:
            if self._conn is not None:
                return
            conn = await open_connection(self.path, busy_timeout_ms=self._busy_timeout_ms)
            try:
                await migrate(
                    conn,
                    application_id=API_KEY_APPLICATION_ID,
                    steps=API_KEY_MIGRATIONS,
                    what="API key",
                )
            except BaseException:
                await conn.close()
                raise
            self._conn = conn

    async def close(self) -> None:
        async with self._lifecycle:
            conn, self._conn = self._conn, None
            if conn is not None:
                with translate_errors("closing the API key store"):
                    await conn.close()

    async def create(self, stored: StoredApiKey) -> None:
        key = stored.key
        texts = (("id", key.id), ("name", key.name), ("creator", key.created_by))
        check_encodable("API key", texts)
        params = (
            key.id,
            key.name,
            key.role.value,
            encode_time(key.created_at),
            key.created_by,
            encode_optional_time(key.revoked_at),
            stored.salt,
            stored.digest,
        )
        conn = self._started()
        with translate_errors("recording an API key"):
            async with conn.execute(_INSERT, params) as cursor:
                inserted = cursor.rowcount
            if inserted:
                return
            rows = list(await conn.execute_fetchall(_DIGEST, (key.id,)))
        if rows and bytes(rows[0]["digest"]) == stored.digest:
            return  # this very key, recorded already: a retried create
        raise ConflictError(f"API key {key.id} already exists", key_id=key.id)

    async def get(self, key_id: str) -> StoredApiKey | None:
        conn = self._started()
        if not encodable(key_id):
            return None  # create refuses such ids
        with translate_errors("reading an API key"):
            rows = list(await conn.execute_fetchall(_GET, (key_id,)))
        if not rows:
            return None
        row = rows[0]
        return StoredApiKey(key=_key(row), salt=bytes(row["salt"]), digest=bytes(row["digest"]))

    async def all(self, include_revoked: bool) -> list[ApiKey]:
        conn = self._started()
        with translate_errors("listing API keys"):
            rows = await conn.execute_fetchall(_ALL if include_revoked else _ACTIVE)
        return [_key(row) for row in rows]

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        conn = self._started()
        if not encodable(key_id):
            return None  # create refuses such ids
        with translate_errors("revoking an API key"):
            rows = list(await conn.execute_fetchall(_REVOKE, (encode_time(at), key_id)))
        return _key(rows[0]) if rows else None

    async def revoked_since(self, since: datetime) -> list[str]:
        conn = self._started()
        with translate_errors("reading revoked API keys"):
            rows = await conn.execute_fetchall(_REVOKED_SINCE, (encode_time(since),))
        return [str(row["id"]) for row in rows]

    def _started(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise UnavailableError("the SQLite API key store is not started")
        return self._conn


def _key(row: Any) -> ApiKey:
    try:
        return ApiKey(
            id=row["id"],
            name=row["name"],
            role=Role(row["role"]),
            created_at=decode_time(row["created_at"]),
            created_by=row["created_by"],
            revoked_at=decode_optional_time(row["revoked_at"]),
        )
    except ValueError as exc:
        raise BackendError(f"API key {row['id']} in SQLite is malformed: {exc}") from exc
