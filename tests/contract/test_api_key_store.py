"""The ApiKeyStore contract, run against every adapter in ``API_KEY_STORES``.

SQLite runs on a file in the test's directory; Redis runs on the server named by
``KG_TEST_REDIS_URL`` (skipped, saying why, without it), in a key namespace of the
test's own that is deleted when the test ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio
import redis.exceptions

from app.adapters.redis_api_key_store import RedisApiKeyStore
from app.adapters.sqlite_api_key_store import SqliteApiKeyStore
from app.adapters.sqlite_job_store import SqliteJobStore
from app.domain.auth import ApiKey, Role
from app.domain.errors import (
    BackendError,
    BadInputError,
    ConfigurationError,
    ConflictError,
    UnavailableError,
)
from app.ports.api_key_store import ApiKeyStore, StoredApiKey
from tests.support.redis_keys import delete_keys

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_REDIS_URL = os.environ.get("KG_TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(
    not _REDIS_URL, reason="KG_TEST_REDIS_URL is not set: no Redis server to test against"
)

StoreFactory = Callable[[], ApiKeyStore]


def stored_key(
    key_id: str | None = None,
    *,
    at: datetime = T0,
    name: str = "ci pipeline",
    role: Role = Role.WRITER,
    by: str = "user:alice",
    revoked_at: datetime | None = None,
) -> StoredApiKey:
    """A key with a fresh random salt and digest (the store never sees a secret)."""
    key = ApiKey(
        id=key_id or secrets.token_hex(8),
        name=name,
        role=role,
        created_at=at,
        created_by=by,
        revoked_at=revoked_at,
    )
    return StoredApiKey(key=key, salt=secrets.token_bytes(16), digest=secrets.token_bytes(32))


# --- fixtures -------------------------------------------------------------------------


async def _delete_namespace(namespace: str) -> None:
    await delete_keys(_REDIS_URL, f"{namespace}*:*")


@pytest.fixture(params=["redis", "sqlite"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Builds unstarted stores, all on the same data; closes them at the end."""
    built: list[ApiKeyStore] = []
    namespace = f"kgtest-{uuid.uuid4().hex[:16]}"
    if request.param == "redis" and not _REDIS_URL:
        pytest.skip("KG_TEST_REDIS_URL is not set: no Redis server to run the redis store on")

    def make() -> ApiKeyStore:
        store: ApiKeyStore
        if request.param == "sqlite":
            store = SqliteApiKeyStore(tmp_path / "data" / "api_keys.sqlite3")
        else:
            store = RedisApiKeyStore(_REDIS_URL, namespace)
        built.append(store)
        return store

    yield make
    for store in built:
        await store.close()
    if request.param == "redis":
        await _delete_namespace(namespace)


@pytest.fixture
async def store(make_store: StoreFactory) -> ApiKeyStore:
    """A started, empty store."""
    started = make_store()
    await started.start()
    return started


# --- the contract ---------------------------------------------------------------------


async def test_create_and_get_round_trip(store: ApiKeyStore) -> None:
    first = stored_key(role=Role.ADMIN)
    second = stored_key(at=T0 + timedelta(seconds=1), role=Role.READER, by="api-key:x")
    await store.create(first)
    await store.create(second)
    got = await store.get(first.key.id)
    assert got == first
    assert got is not None
    assert isinstance(got.salt, bytes) and isinstance(got.digest, bytes)
    assert got.key.created_at.tzinfo is not None
    assert got.key.active and got.key.revoked_at is None
    assert await store.get(second.key.id) == second


async def test_unknown_ids_are_none(store: ApiKeyStore) -> None:
    await store.create(stored_key("0123456789abcdef"))
    for unknown in (
        "fedcba9876543210",
        "",
        "0123456789ABCDEF",
        "0123456789abcdef ",
        "x:y",
        "\ud800",
    ):
        assert await store.get(unknown) is None
        assert await store.revoke(unknown, T0) is None
    assert await store.revoked_since(T0 - timedelta(days=1)) == []


async def test_a_taken_id_is_a_conflict(store: ApiKeyStore) -> None:
    original = stored_key("0123456789abcdef", name="first")
    await store.create(original)
    intruder = stored_key("0123456789abcdef", name="second", role=Role.ADMIN)
    with pytest.raises(ConflictError) as caught:
        await store.create(intruder)
    assert caught.value.details["key_id"] == "0123456789abcdef"
    assert await store.get("0123456789abcdef") == original


async def test_creating_the_same_key_again_is_a_retry_not_a_conflict(store: ApiKeyStore) -> None:
    """A create whose reply was lost is retried by the driver: it finds its own write."""
    key = stored_key()
    await store.create(key)
    await store.create(key)
    assert await store.all(include_revoked=True) == [key.key]


async def test_all_is_oldest_first_and_ties_go_by_id(store: ApiKeyStore) -> None:
    late = stored_key("ffff000000000000", at=T0 + timedelta(hours=2))
    early = stored_key("eeee000000000000", at=T0 - timedelta(days=400))
    tied_b = stored_key("bbbb000000000000", at=T0)
    tied_a = stored_key("aaaa000000000000", at=T0)
    micro = stored_key("0000000000000000", at=T0 + timedelta(microseconds=1))
    for key in (late, tied_b, micro, early, tied_a):
        await store.create(key)
    expected = [early.key, tied_a.key, tied_b.key, micro.key, late.key]
    assert await store.all(include_revoked=True) == expected
    assert await store.all(include_revoked=False) == expected


async def test_revoke_marks_the_key_and_keeps_the_first_time(store: ApiKeyStore) -> None:
    key = stored_key()
    other = stored_key(at=T0 + timedelta(seconds=1))
    await store.create(key)
    await store.create(other)
    when = T0 + timedelta(minutes=5)
    revoked = await store.revoke(key.key.id, when)
    assert revoked == dataclasses.replace(key.key, revoked_at=when)
    assert revoked is not None and not revoked.active

    again = await store.revoke(key.key.id, when + timedelta(hours=1))
    assert again == revoked  # the first time stays
    got = await store.get(key.key.id)
    assert got is not None
    assert got.key.revoked_at == when
    assert (got.salt, got.digest) == (key.salt, key.digest)  # still verifiable, as revoked
    assert await store.all(include_revoked=False) == [other.key]
    assert await store.all(include_revoked=True) == [revoked, other.key]
    assert await store.revoked_since(when + timedelta(minutes=30)) == []


async def test_revoked_since_is_inclusive_and_in_revocation_order(store: ApiKeyStore) -> None:
    keys = [stored_key(at=T0 + timedelta(seconds=i)) for i in range(4)]
    for key in keys:
        await store.create(key)
    first, second, third, never = keys
    await store.revoke(third.key.id, T0 + timedelta(minutes=1))
    await store.revoke(first.key.id, T0 + timedelta(minutes=2))
    await store.revoke(second.key.id, T0 + timedelta(minutes=2, microseconds=1))
    assert await store.revoked_since(T0) == [third.key.id, first.key.id, second.key.id]
    assert await store.revoked_since(T0 + timedelta(minutes=1)) == [
        third.key.id,
        first.key.id,
        second.key.id,
    ]
    assert await store.revoked_since(T0 + timedelta(minutes=1, microseconds=1)) == [
        first.key.id,
        second.key.id,
    ]
    assert await store.revoked_since(T0 + timedelta(minutes=2, microseconds=1)) == [second.key.id]
    assert await store.revoked_since(T0 + timedelta(minutes=3)) == []
    assert never.key.id not in await store.revoked_since(T0 - timedelta(days=1))


async def test_a_key_created_revoked_is_indexed_as_revoked(store: ApiKeyStore) -> None:
    """An import of keys revoked elsewhere: the revocation must still be seen."""
    when = T0 + timedelta(minutes=1)
    key = stored_key(revoked_at=when)
    await store.create(key)
    assert await store.get(key.key.id) == key
    assert await store.revoked_since(when) == [key.key.id]
    assert await store.all(include_revoked=False) == []
    assert await store.revoke(key.key.id, when + timedelta(days=1)) == key.key


async def test_times_in_other_zones_and_naive_times_mean_the_same_instant(
    store: ApiKeyStore,
) -> None:
    paris = timezone(timedelta(hours=2))
    zoned = stored_key(at=T0.astimezone(paris))
    naive = stored_key(at=T0.replace(tzinfo=None) + timedelta(seconds=1))
    await store.create(zoned)
    await store.create(naive)
    got_zoned, got_naive = await store.all(include_revoked=True)
    assert got_zoned.created_at == T0 and got_zoned.created_at.utcoffset() == timedelta(0)
    assert got_naive.created_at == T0 + timedelta(seconds=1)
    await store.revoke(zoned.key.id, (T0 + timedelta(hours=1)).astimezone(paris))
    assert await store.revoked_since(T0 + timedelta(hours=1)) == [zoned.key.id]
    assert await store.revoked_since((T0 + timedelta(hours=1)).replace(tzinfo=None)) == [
        zoned.key.id
    ]


async def test_unicode_names_round_trip(store: ApiKeyStore) -> None:
    names = [
        "Zürich ingest 東京 🚀",
        "ĀŁĘŒ – “quoted” — dash",
        "ключ для импорта",
        "'; DROP TABLE x;--",
    ]
    keys = [
        stored_key(at=T0 + timedelta(seconds=i), name=name, by=f"user:{name}")
        for i, name in enumerate(names)
    ]
    for key in keys:
        await store.create(key)
    assert [k.name for k in await store.all(include_revoked=True)] == names
    for key in keys:
        assert await store.get(key.key.id) == key


async def test_text_that_is_not_utf8_is_bad_input(store: ApiKeyStore) -> None:
    for bad in (stored_key(name="lone \ud800 surrogate"), stored_key(by="user:\udfff")):
        with pytest.raises(BadInputError):
            await store.create(bad)
        assert await store.get(bad.key.id) is None
    with pytest.raises(BadInputError):
        await store.create(stored_key("id-\ud800"))
    assert await store.all(include_revoked=True) == []


async def test_concurrent_revokes_keep_one_time(make_store: StoreFactory) -> None:
    """Two processes revoking at once: both see the same, first-written time."""
    first, second = make_store(), make_store()
    await first.start()
    await second.start()
    key = stored_key()
    await first.create(key)
    times = [T0 + timedelta(seconds=i) for i in range(1, 21)]
    results = await asyncio.gather(
        *(
            (first if i % 2 else second).revoke(key.key.id, at)
            for i, at in enumerate(reversed(times))
        )
    )
    winners = {r.revoked_at for r in results if r is not None}
    assert len(winners) == 1 and len(results) == 20
    (winner,) = winners
    assert winner in times
    stored = await second.get(key.key.id)
    assert stored is not None and stored.key.revoked_at == winner
    assert await first.revoked_since(T0) == [key.key.id]


async def test_concurrent_creates_of_many_keys(store: ApiKeyStore) -> None:
    keys = [stored_key(at=T0 + timedelta(milliseconds=i)) for i in range(30)]
    await asyncio.gather(*(store.create(key) for key in reversed(keys)))
    assert await store.all(include_revoked=True) == [k.key for k in keys]


async def test_two_stores_on_one_backend_share_keys(make_store: StoreFactory) -> None:
    """What lets every API process verify a key another one created or revoked."""
    first, second = make_store(), make_store()
    await first.start()
    await second.start()
    key = stored_key()
    await first.create(key)
    assert await second.get(key.key.id) == key
    with pytest.raises(ConflictError):
        await second.create(stored_key(key.key.id))
    await second.revoke(key.key.id, T0 + timedelta(minutes=1))
    got = await first.get(key.key.id)
    assert got is not None and got.key.revoked_at == T0 + timedelta(minutes=1)
    assert await first.revoked_since(T0) == [key.key.id]


async def test_keys_survive_close_and_reopen(make_store: StoreFactory) -> None:
    store = make_store()
    await store.start()
    await store.start()  # idempotent
    active = stored_key(name="stays", at=T0)
    revoked = stored_key(name="revoked", at=T0 + timedelta(seconds=1))
    await store.create(active)
    await store.create(revoked)
    await store.revoke(revoked.key.id, T0 + timedelta(minutes=1))
    await store.close()
    await store.close()  # idempotent

    reopened = make_store()
    await reopened.start()
    assert await reopened.get(active.key.id) == active
    got = await reopened.get(revoked.key.id)
    assert got is not None and got.key.revoked_at == T0 + timedelta(minutes=1)
    assert [k.name for k in await reopened.all(include_revoked=True)] == ["stays", "revoked"]
    assert await reopened.revoked_since(T0) == [revoked.key.id]


async def test_calls_before_start_or_after_close_are_unavailable(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    with pytest.raises(UnavailableError, match="not started"):
        await store.get("0123456789abcdef")
    await store.start()
    await store.close()
    calls: list[Callable[[], Any]] = [
        lambda: store.create(stored_key()),
        lambda: store.get("0123456789abcdef"),
        lambda: store.all(include_revoked=True),
        lambda: store.revoke("0123456789abcdef", T0),
        lambda: store.revoked_since(T0),
    ]
    for call in calls:
        with pytest.raises(UnavailableError) as caught:
            await call()
        assert caught.value.retryable


# --- SQLite only ------------------------------------------------------------------------


async def test_sqlite_keeps_salt_and_digest_as_blobs(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite3"
    store = SqliteApiKeyStore(path)
    await store.start()
    key = stored_key()
    await store.create(key)
    await store.close()
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT role, salt, digest, revoked_at FROM api_keys WHERE id = ?", (key.key.id,)
        ).fetchone()
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
    finally:
        conn.close()
    assert row == ("writer", key.salt, key.digest, None)
    assert app_id == 0x4B47414B


async def test_sqlite_refuses_another_store_s_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    jobs = SqliteJobStore(path)
    await jobs.start()
    await jobs.close()
    with pytest.raises(ConfigurationError, match="not a API key database"):
        await SqliteApiKeyStore(path).start()


async def test_sqlite_malformed_rows_are_a_backend_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite3"
    store = SqliteApiKeyStore(path)
    await store.start()
    key = stored_key()
    await store.create(key)
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE api_keys SET role = 'superuser' WHERE id = ?", (key.key.id,))
        conn.commit()
    finally:
        conn.close()
    try:
        with pytest.raises(BackendError, match=key.key.id):
            await store.get(key.key.id)
        with pytest.raises(BackendError):
            await store.all(include_revoked=True)
    finally:
        await store.close()


async def test_sqlite_a_directory_it_cannot_create_is_a_configuration_error(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError):
        await SqliteApiKeyStore(blocker / "keys.sqlite3").start()


# --- Redis only -------------------------------------------------------------------------


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisApiKeyStore]:
    namespace = f"kgtest-{uuid.uuid4().hex[:16]}"
    store = RedisApiKeyStore(_REDIS_URL, namespace)
    await store.start()
    yield store
    await store.close()
    await _delete_namespace(namespace)


@pytest.fixture
async def redis_raw() -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(_REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@needs_redis
async def test_redis_layout_is_a_hash_and_two_indexes(
    redis_store: RedisApiKeyStore, redis_raw: redis.asyncio.Redis
) -> None:
    ns = redis_store.namespace
    key = stored_key(name="Zürich 🚀")
    await redis_store.create(key)
    stored = await redis_raw.hgetall(f"{ns}:apikey:{key.key.id}")
    assert stored == {
        "name": "Zürich 🚀",
        "role": "writer",
        "created_at": "2024-05-01T12:00:00.000000+00:00",
        "created_by": "user:alice",
        "salt": key.salt.hex(),
        "digest": key.digest.hex(),
    }
    assert await redis_raw.ttl(f"{ns}:apikey:{key.key.id}") == -1  # never expires
    created = await redis_raw.zrange(f"{ns}:apikeys:created", 0, -1, withscores=True)
    assert created == [(key.key.id, T0.timestamp() * 1_000_000)]
    assert await redis_raw.zcard(f"{ns}:apikeys:revoked") == 0

    await redis_store.revoke(key.key.id, T0 + timedelta(seconds=1))
    revoked = await redis_raw.zrange(f"{ns}:apikeys:revoked", 0, -1, withscores=True)
    assert revoked == [(key.key.id, (T0.timestamp() + 1) * 1_000_000)]
    stored = await redis_raw.hgetall(f"{ns}:apikey:{key.key.id}")
    assert stored["revoked_at"] == "2024-05-01T12:00:01.000000+00:00"


@needs_redis
async def test_redis_namespaces_do_not_see_each_other(redis_store: RedisApiKeyStore) -> None:
    other = RedisApiKeyStore(_REDIS_URL, redis_store.namespace + "-other")
    await other.start()
    try:
        key = stored_key()
        await redis_store.create(key)
        assert await other.get(key.key.id) is None
        assert await other.all(include_revoked=True) == []
        await other.create(stored_key(key.key.id))  # no conflict in another namespace
        await other.revoke(key.key.id, T0)
        assert await redis_store.revoked_since(T0) == []
    finally:
        await other.close()
        await _delete_namespace(redis_store.namespace + "-other")


@needs_redis
async def test_redis_malformed_data_is_a_backend_error(
    redis_store: RedisApiKeyStore, redis_raw: redis.asyncio.Redis
) -> None:
    ns = redis_store.namespace
    await redis_raw.hset(f"{ns}:apikey:badrole", mapping={"name": "x", "role": "root"})
    await redis_raw.zadd(f"{ns}:apikeys:created", {"badrole": 1})
    await redis_raw.hset(
        f"{ns}:apikey:badsalt",
        mapping={
            "name": "x",
            "role": "reader",
            "created_at": "2024-05-01T12:00:00+00:00",
            "created_by": "u",
            "salt": "zz",
            "digest": "00",
        },
    )
    reads: list[Callable[[], Any]] = [
        lambda: redis_store.get("badrole"),
        lambda: redis_store.get("badsalt"),
        lambda: redis_store.all(include_revoked=True),
    ]
    for read in reads:
        with pytest.raises(BackendError) as caught:
            await read()
        assert "bad" in str(caught.value)
    await redis_raw.set(f"{ns}:apikey:str", "not a hash")
    await redis_raw.set(f"{ns}:apikeys:revoked", "not a sorted set")
    wrong_types: list[Callable[[], Any]] = [
        lambda: redis_store.get("str"),
        lambda: redis_store.revoked_since(T0),
    ]
    for read in wrong_types:
        with pytest.raises(BackendError) as caught:
            await read()
        assert not caught.value.retryable
        assert isinstance(caught.value.__cause__, redis.exceptions.ResponseError)


@needs_redis
async def test_redis_refused_credentials_are_a_configuration_error() -> None:
    server = urlsplit(_REDIS_URL)
    secret = "s3cret-Passw0rd"
    store = RedisApiKeyStore(f"redis://nobody:{secret}@{server.netloc.rpartition('@')[2]}/0")
    with pytest.raises(ConfigurationError) as caught:
        await store.start()
    assert secret not in str(caught.value)
    assert isinstance(caught.value.__cause__, redis.exceptions.AuthenticationError)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redis_unreachable_is_unavailable_and_names_the_server() -> None:
    port = _closed_port()
    store = RedisApiKeyStore(f"redis://:pw-never-shown@127.0.0.1:{port}/2", timeout=1)
    with pytest.raises(UnavailableError) as caught:
        await store.start()
    assert caught.value.retryable
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "pw-never-shown" not in str(caught.value)
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    with pytest.raises(UnavailableError, match="not started"):
        await store.get("0123456789abcdef")
    await store.close()  # closing a store that never started is fine


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


async def test_redis_that_never_answers_times_out_as_unavailable(silent_port: int) -> None:
    store = RedisApiKeyStore(f"redis://127.0.0.1:{silent_port}/0", timeout=0.2)
    with pytest.raises(UnavailableError) as caught:
        await store.start()
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, redis.exceptions.TimeoutError)


class _Proxy:
    """A TCP relay to the test server that can be cut: a server that goes away."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        if self._server is not None:
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


@needs_redis
async def test_redis_server_gone_after_start_is_unavailable() -> None:
    server = urlsplit(_REDIS_URL)
    proxy = _Proxy(server.hostname or "127.0.0.1", server.port or 6379)
    await proxy.start()
    namespace = f"kgtest-{uuid.uuid4().hex[:16]}"
    store = RedisApiKeyStore(f"redis://127.0.0.1:{proxy.port}{server.path}", namespace, timeout=1)
    try:
        await store.start()
        await store.create(stored_key("0123456789abcdef"))
        assert await store.get("0123456789abcdef") is not None
        await proxy.cut()
        calls: list[Callable[[], Any]] = [
            lambda: store.get("0123456789abcdef"),
            lambda: store.revoke("0123456789abcdef", T0),
            lambda: store.all(include_revoked=True),
        ]
        for call in calls:
            with pytest.raises(UnavailableError) as caught:
                await call()
            assert caught.value.retryable
            assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    finally:
        await store.close()
        await proxy.cut()
        await _delete_namespace(namespace)


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("http://127.0.0.1:6379/0", {}, "scheme"),
        ("redis://:hunter2@127.0.0.1:6379/zero", {}, "Redis URL"),
        ("redis://127.0.0.1:6379/0", {"namespace": ""}, "namespace"),
        ("redis://127.0.0.1:6379/0", {"namespace": "a:b"}, "namespace"),
        ("redis://127.0.0.1:6379/0", {"timeout": 0}, "timeout"),
    ],
)
def test_redis_bad_configuration_is_refused(url: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        RedisApiKeyStore(url, **kwargs)
    assert "hunter2" not in str(caught.value)
