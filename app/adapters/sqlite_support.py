"""What every SQLite adapter shares: opening a tuned connection, migrating a schema,
translating driver errors, and encoding times and JSON.

Connections run in autocommit mode (``isolation_level=None``); adapters open their own
transactions with ``BEGIN IMMEDIATE`` so the write lock is taken up front rather than
upgraded half-way (which is where SQLite deadlocks into ``database is locked``).

Schemas are versioned with ``PRAGMA user_version``: step ``n`` of a migration list takes
the file from version ``n`` to ``n + 1``, each step in its own transaction. Every store
stamps its file with its own ``PRAGMA application_id``, so pointing two stores at the
same file is refused instead of mixing their versions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import aiosqlite

from app.domain.errors import (
    BackendError,
    BadInputError,
    ConfigurationError,
    KGError,
    UnavailableError,
)

DEFAULT_BUSY_TIMEOUT_MS = 5_000

# A migration step: statements run, in order, in one transaction.
Migration = tuple[str, ...]

_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_BUSY_WORDS = ("database is locked", "database table is locked", "database is busy")


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says the file is busy or locked (transient)."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    return primary in _BUSY_CODES or any(word in str(exc).lower() for word in _BUSY_WORDS)


def error_from(exc: sqlite3.Error, action: str) -> KGError:
    """Our error for a driver error: busy and locked are transient, the rest are not."""
    if is_busy(exc):
        return UnavailableError(f"SQLite is busy while {action}: {exc}", retryable=True)
    return BackendError(f"SQLite failed while {action}: {exc}", retryable=False)


@contextmanager
def translate_errors(action: str) -> Iterator[None]:
    """Re-raise sqlite3 errors raised inside the block as our own, chained."""
    try:
        yield
    except sqlite3.Error as exc:
        raise error_from(exc, action) from exc


def open_inline_reader(path: Path) -> sqlite3.Connection:
    """A query-only connection for the event loop's own thread: rows as ``sqlite3.Row``
    and no busy wait (``busy_timeout`` 0), so a statement that would have to wait fails
    at once with SQLITE_BUSY instead of stalling the loop; its caller then reads
    through a threaded reader, which may wait. The file must exist (the writer made it)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot open SQLite file {path}: {exc}") from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        conn.close()
        raise error_from(exc, f"opening {path}") from exc
    return conn


async def open_connection(
    path: Path, *, busy_timeout_ms: int, query_only: bool = False
) -> aiosqlite.Connection:
    """A connection in WAL mode with foreign keys on, rows as ``sqlite3.Row``, and the
    ``kg_fold`` SQL function (Unicode case folding, which SQLite's ``lower`` lacks)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the directory of {path}: {exc}") from exc
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot open SQLite file {path}: {exc}") from exc
    try:
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = FULL")
        if query_only:
            await conn.execute("PRAGMA query_only = ON")
        else:
            await conn.execute("PRAGMA journal_mode = WAL")
        await conn.create_function("kg_fold", 1, _fold, deterministic=True)
    except sqlite3.Error as exc:
        await conn.close()
        kg_error = error_from(exc, f"opening {path}")
        if isinstance(kg_error, UnavailableError):
            raise kg_error from exc
        raise ConfigurationError(f"cannot use SQLite file {path}: {exc}") from exc
    except BaseException:
        await conn.close()
        raise
    return conn


def _fold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value


async def migrate(
    conn: aiosqlite.Connection, *, application_id: int, steps: Sequence[Migration], what: str
) -> int:
    """Bring the schema to ``len(steps)``; return the version found before. Safe to run
    again and from several processes at once (each step re-checks under the write lock)."""
    try:
        found = await _read_version(conn, application_id, what)
        if found > len(steps):
            raise ConfigurationError(
                f"the {what} schema is at version {found}, newer than this code knows "
                f"({len(steps)}); upgrade the server"
            )
        for target in range(found + 1, len(steps) + 1):
            try:
                await conn.execute("BEGIN IMMEDIATE")
                current = await _read_version(conn, application_id, what)
                if current < target:
                    for statement in steps[target - 1]:
                        await conn.execute(statement)
                    await conn.execute(f"PRAGMA application_id = {int(application_id)}")
                    await conn.execute(f"PRAGMA user_version = {int(target)}")
                await conn.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    await conn.rollback()
                raise
    except sqlite3.Error as exc:
        kg_error = error_from(exc, f"migrating the {what} schema")
        if isinstance(kg_error, UnavailableError):
            raise kg_error from exc
        raise ConfigurationError(f"cannot migrate the {what} schema: {exc}") from exc
    return found


async def _read_version(conn: aiosqlite.Connection, application_id: int, what: str) -> int:
    rows = list(await conn.execute_fetchall("PRAGMA application_id"))
    found_app = int(rows[0][0])
    if found_app not in (0, application_id):
        raise ConfigurationError(f"the file is not a {what} database (application_id {found_app})")
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


# --- values --------------------------------------------------------------------------


def encode_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"{what} is not JSON-serialisable: {exc}") from exc


def encode_optional_json(value: Any, what: str) -> str | None:
    return None if value is None else encode_json(value, what)


def decode_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def id_list(ids: Iterable[str]) -> str:
    """Keys as one JSON parameter, read in SQL with ``json_each``: one statement for any
    number of keys, never a statement per key and never near the variable limit."""
    return json.dumps(list(ids))
