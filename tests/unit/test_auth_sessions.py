"""The session watcher closes live sessions whose token expired or whose API key was
revoked (here or by another process sharing the store), leaves the others open, and only
reads the store while a key-opened session is live. Real SQLite key store; a settable
clock, so nothing waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.adapters.sqlite_api_key_store import SqliteApiKeyStore
from app.domain.auth import Principal, Role
from app.observability.instrument import CallCounter, instrument
from app.security.api_keys import ApiKeys
from app.security.authenticate import LOCAL_PRINCIPAL
from app.security.sessions import CLOSE_CODE, Session, SessionWatcher

ADMIN = Principal(subject="admin", roles=frozenset({Role.ADMIN}), kind="token")
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Socket:
    """What a session closes: records the close, as a WebSocket would receive it."""

    def __init__(self) -> None:
        self.closed: list[tuple[int, str]] = []

    async def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteApiKeyStore]:
    s = SqliteApiKeyStore(tmp_path / "keys.sqlite3")
    await s.start()
    try:
        yield s
    finally:
        await s.close()


def session(principal: Principal) -> tuple[Session, Socket]:
    socket = Socket()
    return Session(close=socket.close, principal=principal), socket


def token_principal(expires_at: datetime) -> Principal:
    return Principal("user-1", frozenset({Role.READER}), "token", expires_at=expires_at)


async def test_expired_tokens_close_and_live_ones_stay(store: SqliteApiKeyStore) -> None:
    clock = Clock()
    watcher = SessionWatcher(ApiKeys(store), clock=clock)
    soon, soon_socket = session(token_principal(T0 + timedelta(seconds=5)))
    later, later_socket = session(token_principal(T0 + timedelta(hours=1)))
    watcher.watch(soon)
    watcher.watch(later)
    assert await watcher.check() == 0 and len(watcher) == 2
    clock.now = T0 + timedelta(seconds=5)
    assert await watcher.check() == 1
    assert soon_socket.closed == [(CLOSE_CODE, "Unauthorized: credential expired")]
    assert later_socket.closed == [] and len(watcher) == 1
    assert await watcher.check() == 0  # closed once only
    assert soon_socket.closed == [(CLOSE_CODE, "Unauthorized: credential expired")]


async def test_sessions_that_cannot_end_are_not_watched(store: SqliteApiKeyStore) -> None:
    watcher = SessionWatcher(ApiKeys(store))
    local, _ = session(LOCAL_PRINCIPAL)
    unauthenticated = Session(close=Socket().close)
    watcher.watch(local)
    watcher.watch(unauthenticated)
    assert len(watcher) == 0


async def test_revoked_keys_close_their_sessions_only(store: SqliteApiKeyStore) -> None:
    clock = Clock()
    keys = ApiKeys(store, clock=clock)
    watcher = SessionWatcher(keys, clock=clock)
    revoked_key, revoked_secret = await keys.create("doomed", Role.READER, ADMIN)
    _, kept_secret = await keys.create("kept", Role.READER, ADMIN)
    doomed, doomed_socket = session(await keys.verify(revoked_secret))
    kept, kept_socket = session(await keys.verify(kept_secret))
    watcher.watch(doomed)
    watcher.watch(kept)
    clock.now = T0 + timedelta(seconds=1)
    assert await watcher.check() == 0
    clock.now = T0 + timedelta(seconds=2)
    await keys.revoke(revoked_key.id, ADMIN)
    clock.now = T0 + timedelta(seconds=3)
    assert await watcher.check() == 1
    assert doomed_socket.closed == [(CLOSE_CODE, "Unauthorized: API key revoked")]
    assert kept_socket.closed == []
    watcher.forget(kept)
    assert len(watcher) == 0


async def test_a_revocation_by_a_process_with_a_lagging_clock_is_seen(
    store: SqliteApiKeyStore,
) -> None:
    ours = Clock()
    theirs = Clock()  # another process sharing the store, 10 s behind us
    watcher = SessionWatcher(ApiKeys(store, clock=ours), clock=ours, overlap=30)
    other = ApiKeys(store, clock=theirs)
    key, secret = await other.create("script", Role.WRITER, ADMIN)
    live, socket = session(await other.verify(secret))
    watcher.watch(live)
    ours.now = T0 + timedelta(seconds=60)
    assert await watcher.check() == 0
    theirs.now = T0 + timedelta(seconds=51)  # revoked "before" our last check, by its clock
    await other.revoke(key.id, ADMIN)
    ours.now = T0 + timedelta(seconds=61)
    assert await watcher.check() == 1
    assert socket.closed == [(CLOSE_CODE, "Unauthorized: API key revoked")]


async def test_the_store_is_read_only_while_a_key_session_is_live(
    store: SqliteApiKeyStore,
) -> None:
    counted = instrument("api_keys_watch_test", store)
    keys = ApiKeys(counted)
    watcher = SessionWatcher(keys)
    tokens_only, _ = session(token_principal(datetime.now(UTC) + timedelta(hours=1)))
    watcher.watch(tokens_only)
    counter = CallCounter("api_keys_watch_test")
    await watcher.check()
    await watcher.check()
    assert counter.calls_since() == {}
    _, secret = await keys.create("script", Role.READER, ADMIN)
    keyed, _ = session(await keys.verify(secret))
    watcher.watch(keyed)
    before = counter.snapshot()
    await watcher.check()
    assert counter.calls_since(before) == {"revoked_since": 1}


async def test_run_checks_on_its_interval_and_survives_a_store_failure(
    tmp_path: Path,
) -> None:
    store = SqliteApiKeyStore(tmp_path / "keys.sqlite3")
    await store.start()
    keys = ApiKeys(store)
    _, secret = await keys.create("script", Role.READER, ADMIN)
    principal = await keys.verify(secret)
    await store.close()  # the store goes away: checks fail, the loop goes on
    watcher = SessionWatcher(keys, interval=0.01)
    live, socket = session(principal)
    watcher.watch(live)
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.1)
    assert not task.done() and socket.closed == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
