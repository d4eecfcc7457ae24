"""JobStore on Redis: ingestion jobs every API process and worker can read.

Layout, under a namespace (``kg`` by default):

    <ns>:job:<id>          hash: status, stage, progress, created_at, token (of the
                           create that wrote it), and when set document_id, error,
                           finished_at; while the job is unfinished also request (JSON)
                           and pending (its entry in the index)
    <ns>:jobs:unfinished   sorted set of the unfinished jobs that keep a request; every
                           score is 0, so members sort by their text:
                           "<created_at ISO UTC> <sequence, 20 digits> <job id>"
    <ns>:jobs:seq          counter breaking ties between jobs created at the same instant

``create`` and ``update`` are Lua scripts, so each is atomic: create refuses an existing
id, update refuses an unknown one, and the unfinished index changes with the job. A job
that finishes loses its request and expires after ``finished_ttl`` seconds (7 days by
default); unfinished jobs never expire. Every create carries a random token, so a create
the client retried after a lost reply finds its own write instead of a conflict.

Times are stored as fixed-width ISO-8601 UTC (naive means UTC) and come back aware.
Driver failures become ``UnavailableError`` (unreachable, timed out, loading; retryable),
``ConfigurationError`` (credentials or permissions refused; the password never appears
in a message) or ``BackendError`` (anything else, and malformed stored jobs).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript

from app.adapters.redis_support import check_url, connect, redis_error
from app.adapters.request_codec import request_fields, request_from_fields
from app.adapters.stored_text import decode_optional_time, decode_time, encode_time
from app.domain.errors import (
    BackendError,
    BadInputError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    UnavailableError,
)
from app.domain.models import IngestionJob, IngestionRequest, JobStatus, Stage

DEFAULT_FINISHED_TTL = 7 * 24 * 3600.0  # seconds
_READ_BATCH = 256  # requests fetched per round trip by unfinished()

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'created_at', ARGV[2], unpack(ARGV, 6))
if ARGV[3] ~= '' then
  local seq = redis.call('INCR', KEYS[3])
  local member = ARGV[2] .. ' ' .. string.format('%020d', seq) .. ' ' .. ARGV[5]
  redis.call('HSET', KEYS[1], 'request', ARGV[3], 'pending', member)
  redis.call('ZADD', KEYS[2], 0, member)
end
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
"""

_RANKS = ", ".join(f"{s.value}={s.rank}" for s in Stage)  # a Lua table's fields
# Forward only (see JobStore.update): 0 no such job, 2 already past this state, 1 done.
# ARGV: ttl, then _fields(job), which starts 'status', <status>, 'stage', <stage>.
_UPDATE = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'COMPLETED' or status == 'FAILED' then return 2 end
local rank = {{{_RANKS}}}
local stored = rank[redis.call('HGET', KEYS[1], 'stage')] or -1
if stored > (rank[ARGV[5]] or -1) then return 2 end
redis.call('HDEL', KEYS[1], 'document_id', 'error', 'finished_at')
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
local ttl = tonumber(ARGV[1])
if ttl > 0 then
  local member = redis.call('HGET', KEYS[1], 'pending')
  if member then redis.call('ZREM', KEYS[2], member) end
  redis.call('HDEL', KEYS[1], 'request', 'pending')
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class _Connection:
    """A started client and the scripts registered on it."""

    client: redis.asyncio.Redis
    create: AsyncScript
    update: AsyncScript


class RedisJobStore:
    """Ingestion jobs in Redis at ``url`` (``redis://`` or ``rediss://``, db in the path)."""

    def __init__(
        self,
        url: str,
        namespace: str = "kg",
        *,
        finished_ttl: float = DEFAULT_FINISHED_TTL,
        timeout: float = 5.0,
    ) -> None:
        if not namespace or ":" in namespace:
            raise ConfigurationError(f"namespace must be non-empty without ':', got {namespace!r}")
        if finished_ttl < 0.001:
            raise ConfigurationError(f"finished_ttl must be at least 1 ms, got {finished_ttl}")
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout}")
        self.where, self._secret = check_url(url)
        self.namespace = namespace
        self.finished_ttl = finished_ttl
        self._url = url
        self._timeout = timeout
        self._index = f"{namespace}:jobs:unfinished"
        self._seq = f"{namespace}:jobs:seq"
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
                client, client.register_script(_CREATE), client.register_script(_UPDATE)
            )

    async def close(self) -> None:
        async with self._lifecycle:
            conn, self._conn = self._conn, None
            if conn is not None:
                with self._translated("closing the job store"):
                    await conn.client.aclose()

    async def create(self, job: IngestionJob, request: IngestionRequest | None) -> None:
        if request is not None and request.job_id != job.id:
            raise BadInputError(f"request of job {request.job_id} given for job {job.id}")
        stored = "" if request is None or job.status.finished else _encode_request(request)
        conn = self._started()
        keys = [self._job_key(job.id), self._index, self._seq]
        args: list[str | int] = [
            secrets.token_hex(16),
            encode_time(job.created_at),
            stored,
            self._ttl_ms(job),
            job.id,
            *_fields(job),
        ]
        with self._translated("recording a job"):
            created = await conn.create(keys=keys, args=args)
        if not created:
            raise ConflictError(f"job {job.id} already exists", job_id=job.id)

    async def update(self, job: IngestionJob) -> bool:
        conn = self._started()
        keys = [self._job_key(job.id), self._index]
        with self._translated("updating a job"):
            updated = await conn.update(keys=keys, args=[self._ttl_ms(job), *_fields(job)])
        if not updated:
            raise NotFoundError(f"no job {job.id}", job_id=job.id)
        return bool(updated == 1)

    async def get(self, ids: Sequence[str]) -> list[IngestionJob | None]:
        if not ids:
            return []
        client = self._started().client
        with self._translated("reading jobs"):
            async with client.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self._job_key(job_id))
                rows: list[dict[str, str]] = await pipe.execute()
        return [
            self._decode_job(job_id, row) if row else None
            for job_id, row in zip(ids, rows, strict=True)
        ]

    async def unfinished(self) -> list[IngestionRequest]:
        """Requests of the indexed jobs, oldest first. A job that finishes while this
        runs is left out (its request is already gone)."""
        client = self._started().client
        requests: list[IngestionRequest] = []
        with self._translated("reading unfinished jobs"):
            members = await client.zrange(self._index, 0, -1)
            job_ids = [str(member).split(" ", 2)[-1] for member in members]
            for start in range(0, len(job_ids), _READ_BATCH):
                batch = job_ids[start : start + _READ_BATCH]
                async with client.pipeline(transaction=False) as pipe:
                    for job_id in batch:
                        pipe.hget(self._job_key(job_id), "request")
                    texts: list[str | None] = await pipe.execute()
                requests.extend(
                    self._decode_request(job_id, text)
                    for job_id, text in zip(batch, texts, strict=True)
                    if text is not None
                )
        return requests

    # --- helpers ------------------------------------------------------------------------

    def _started(self) -> _Connection:
        if self._conn is None:
            raise UnavailableError("the Redis job store is not started")
        return self._conn

    def _job_key(self, job_id: str) -> str:
        return f"{self.namespace}:job:{job_id}"

    def _ttl_ms(self, job: IngestionJob) -> int:
        """How long the job's key lives, in ms; 0 (never expires) while unfinished."""
        return max(1, round(self.finished_ttl * 1000)) if job.status.finished else 0

    def _decode_job(self, job_id: str, row: dict[str, str]) -> IngestionJob:
        try:
            return IngestionJob(
                id=job_id,
                status=JobStatus(row["status"]),
                stage=Stage(row["stage"]),
                progress=float(row["progress"]),
                document_id=row.get("document_id"),
                error=row.get("error"),
                created_at=decode_time(row["created_at"]),
                finished_at=decode_optional_time(row.get("finished_at")),
            )
        except (KeyError, ValueError) as exc:
            raise BackendError(
                f"job {job_id} in Redis at {self.where} is malformed: {exc!r}"
            ) from exc

    def _decode_request(self, job_id: str, text: str) -> IngestionRequest:
        try:
            return _decode_request(text)
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(
                f"the request of job {job_id} in Redis at {self.where} is malformed: {exc!r}"
            ) from exc

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Driver errors raised inside the block as ours, chained."""
        try:
            yield
        except (redis.exceptions.RedisError, TimeoutError) as exc:
            raise redis_error(exc, action, self.where, self._secret) from exc


def _fields(job: IngestionJob) -> list[str]:
    """The job's mutable fields as hash field/value pairs; unset ones are left out."""
    values: list[str] = [
        "status",
        job.status.value,
        "stage",
        job.stage.value,
        "progress",
        repr(float(job.progress)),
    ]
    if job.document_id is not None:
        values += ["document_id", job.document_id]
    if job.error is not None:
        values += ["error", job.error]
    if job.finished_at is not None:
        values += ["finished_at", encode_time(job.finished_at)]
    return values


def _encode_request(request: IngestionRequest) -> str:
    try:
        text = json.dumps(request_fields(request), ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")  # a lone surrogate would fail later, inside the driver
    except (TypeError, ValueError) as exc:
        raise BadInputError(
            f"the request of job {request.job_id} is not JSON-serialisable: {exc}"
        ) from exc
    return text


def _decode_request(text: str) -> IngestionRequest:
    return request_from_fields(json.loads(text))
