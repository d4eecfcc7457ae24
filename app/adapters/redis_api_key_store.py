"""ApiKeyStore on Redis: API keys every API process shares.

Layout, under a namespace (``kg`` by default):

    <ns>:apikey:<id>        hash: name, role, created_at, created_by, salt and digest
                            (hex), and revoked_at once revoked
    <ns>:apikeys:created    sorted set of every key id, scored by its creation time
    <ns>:apikeys:revoked    sorted set of the revoked key ids, scored by revocation time

Scores are microseconds since the epoch (exact in a double until the year 2255), so
equal times sort by id: keys come back oldest first and, at one instant, in id order
(the SQLite adapter's order too). ``create`` and ``revoke`` are Lua scripts, so each is
atomic: create refuses an existing id, revoke keeps the first revocation time and
indexes it with the hash. A create the client retried after a lost reply finds its own
write (same digest, which a random salt makes unique) instead of a conflict. Keys never
expire: a revoked key stays listed as revoked.

Times are stored as ISO-8601 UTC text (naive means UTC) and come back aware. Driver
failures are translated as the job store does (``redis_error``): ``UnavailableError``
when unreachable or timed out, ``ConfigurationError`` when credentials are refused (the
password never appears), ``BackendError`` for anything else and malformed stored keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript

from app.adapters.redis_support import check_url, connect, redis_error

# The URL check and the error mapping are the job store's, so both speak alike.
from app.adapters.stored_text import check_encodable, decode_time, encodable, encode_time
from app.domain.auth import ApiKey, Role
from app.domain.errors import (
    BackendError,
    ConfigurationError,
    ConflictError,
    UnavailableError,
)
from app.ports.api_key_store import StoredApiKey

_READ_BATCH = 256  # hashes fetched per round trip by all()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# KEYS: hash, created index, revoked index. ARGV: id, created score, digest, revoked
# score ('' when not revoked), then the hash's field/value pairs. 1 written, 0 conflict.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'digest') == ARGV[3] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1]) end
return 1
"""

# KEYS: hash, revoked index. ARGV: revoked_at, its score, id. The hash as it is now
# (field, value, ...), nil when there is no such key.
_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if redis.call('HEXISTS', KEYS[1], 'revoked_at') == 0 then
  redis.call('HSET', KEYS[1], 'revoked_at', ARGV[1])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
end
return redis.call('HGETALL', KEYS[1])
"""


@dataclass(frozen=True, slots=True)
class _Connection:
    """A started client and the scripts registered on it."""

    client: redis.asyncio.Redis
    create: AsyncScript
    revoke: AsyncScript


class RedisApiKeyStore:
    """API keys in Redis at ``url`` (``redis://`` or ``rediss://``, db in the path)."""

    def __init__(self, url: str, namespace: str = "kg", *, timeout: float = 5.0) -> None:
        if not namespace or ":" in namespace:
            raise ConfigurationError(f"namespace must be non-empty without ':', got {namespace!r}")
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout}")
        self.where, self._secret = check_url(url)
        self.namespace = namespace
        self._url = url
        self._timeout = timeout
        self._created = f"{namespace}:apikeys:created"
        self._revoked = f"{namespace}:apikeys:revoked"
        self._conn: _Connection | None = None
        self._lifecycle = asyncio.Lock()

    async def start(self) -> None:
        """Connect and PING; a second call does nothing."""
        async with self._lifecycle:
            if self._conn is not None:
                return
            client = await connect(
                self._url,
                self._timeout,
                Retry(ExponentialBackoff(cap=1.0, base=0.05), 2),
                self.where,
                self._secret,
            )
            self._conn = _Connection(
                client, client.register_script(_CREATE), client.register_script(_REVOKE)
            )

    async def close(self) -> None:
        async with self._lifecycle:
            conn, self._conn = self._conn, None
            if conn is not None:
                with self._translated("closing the API key store"):
                    await conn.client.aclose()

    async def create(self, stored: StoredApiKey) -> None:
        key = stored.key
        texts = (("id", key.id), ("name", key.name), ("creator", key.created_by))
        check_encodable("API key", texts)
        fields = [
            "name",
            key.name,
            "role",
            key.role.value,
            "created_at",
            encode_time(key.created_at),
            "created_by",
            key.created_by,
            "salt",
            stored.salt.hex(),
            "digest",
            stored.digest.hex(),
        ]
        if key.revoked_at is not None:
            fields += ["revoked_at", encode_time(key.revoked_at)]
        revoked_score = "" if key.revoked_at is None else _score(key.revoked_at)
        args = [key.id, _score(key.created_at), stored.digest.hex(), revoked_score, *fields]
        conn = self._started()
        with self._translated("recording an API key"):
            created = await conn.create(
                keys=[self._key(key.id), self._created, self._revoked], args=args
            )
        if not created:
            raise ConflictError(f"API key {key.id} already exists", key_id=key.id)

    async def get(self, key_id: str) -> StoredApiKey | None:
        client = self._started().client
        if not encodable(key_id):
            return None  # create refuses such ids
        with self._translated("reading an API key"):
            row = cast(dict[str, str], await client.hgetall(self._key(key_id)))
        if not row:
            return None
        try:
            salt, digest = bytes.fromhex(row["salt"]), bytes.fromhex(row["digest"])
        except (KeyError, ValueError) as exc:
            raise BackendError(
                f"API key {key_id} in Redis at {self.where} is malformed: {exc!r}"
            ) from exc
        return StoredApiKey(key=self._decode(key_id, row), salt=salt, digest=digest)

    async def all(self, include_revoked: bool) -> list[ApiKey]:
        client = self._started().client
        keys: list[ApiKey] = []
        with self._translated("listing API keys"):
            ids = cast(list[str], await client.zrange(self._created, 0, -1))
            for start in range(0, len(ids), _READ_BATCH):
                batch = ids[start : start + _READ_BATCH]
                async with client.pipeline(transaction=False) as pipe:
                    for key_id in batch:
                        pipe.hgetall(self._key(key_id))
                    rows: list[dict[str, str]] = await pipe.execute()
                keys.extend(
                    self._decode(key_id, row)
                    for key_id, row in zip(batch, rows, strict=True)
                    if row and (include_revoked or "revoked_at" not in row)
                )
        return keys

    async def revoke(self, key_id: str, at: datetime) -> ApiKey | None:
        conn = self._started()
        if not encodable(key_id):
            return None  # create refuses such ids
        args = [encode_time(at), _score(at), key_id]
        with self._translated("revoking an API key"):
            flat: list[str] | None = await conn.revoke(
                keys=[self._key(key_id), self._revoked], args=args
            )
        if flat is None:
            return None
        row = dict(zip(flat[::2], flat[1::2], strict=True))
        return self._decode(key_id, row)

    async def revoked_since(self, since: datetime) -> list[str]:
        client = self._started().client
        with self._translated("reading revoked API keys"):
            ids = await client.zrangebyscore(self._revoked, _score(since), "+inf")
        return cast(list[str], ids)

    # --- helpers ------------------------------------------------------------------------

    def _started(self) -> _Connection:
        if self._conn is None:
            raise UnavailableError("the Redis API key store is not started")
        return self._conn

    def _key(self, key_id: str) -> str:
        return f"{self.namespace}:apikey:{key_id}"

    def _decode(self, key_id: str, row: dict[str, Any]) -> ApiKey:
        try:
            return ApiKey(
                id=key_id,
                name=row["name"],
                role=Role(row["role"]),
                created_at=decode_time(row["created_at"]),
                created_by=row["created_by"],
                revoked_at=decode_time(row["revoked_at"]) if "revoked_at" in row else None,
            )
        except (KeyError, ValueError) as exc:
            raise BackendError(
                f"API key {key_id} in Redis at {self.where} is malformed: {exc!r}"
            ) from exc

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Driver errors raised inside the block as ours, chained."""
        try:
            yield
        except (redis.exceptions.RedisError, TimeoutError) as exc:
            raise redis_error(exc, action, self.where, self._secret) from exc


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _score(value: datetime) -> str:
    """Microseconds since the epoch, as an exact integer."""
    return str((_utc(value) - _EPOCH) // timedelta(microseconds=1))
