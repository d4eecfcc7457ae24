"""JobStore on a SQLite file of its own: the embedded default for ingestion jobs.

The jobs live in their own file (say ``<data_dir>/jobs.sqlite3``), not in the graph's:
each file is stamped with its store's ``application_id`` and schema version, so giving
this store the graph's file is refused at start with a ``ConfigurationError``. Keeping
them apart also means a slow document write never holds up a progress update.

A job keeps the ``IngestionRequest`` that runs it (as JSON) while it is unfinished, so
``unfinished()`` can hand those requests back to workers after a restart; the request
text is cleared when the job reaches COMPLETED or FAILED. Every call is one statement in
autocommit mode, so several processes may share the file (WAL, ``busy_timeout``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from app.adapters.request_codec import request_fields, request_from_fields
from app.adapters.sqlite_support import (
    DEFAULT_BUSY_TIMEOUT_MS,
    Migration,
    decode_json,
    encode_json,
    id_list,
    migrate,
    open_connection,
    translate_errors,
)
from app.adapters.stored_text import (
    decode_optional_time,
    decode_time,
    encode_optional_time,
    encode_time,
)
from app.domain.errors import BadInputError, ConflictError, NotFoundError, UnavailableError
from app.domain.models import (
    IngestionJob,
    IngestionRequest,
    JobStatus,
    Stage,
)

JOB_APPLICATION_ID = 0x4B474A53  # "KGJS"

JOB_MIGRATIONS: tuple[Migration, ...] = (
    (
        """
        CREATE TABLE jobs (
            seq         INTEGER PRIMARY KEY,
            id          TEXT NOT NULL UNIQUE,
            status      TEXT NOT NULL,
            stage       TEXT NOT NULL,
            progress    REAL NOT NULL,
            document_id TEXT,
            error       TEXT,
            created_at  TEXT NOT NULL,
            finished_at TEXT,
            request     TEXT
        )
        """,
        # Only unfinished jobs keep a request: the index stays as small as the backlog.
        "CREATE INDEX jobs_pending ON jobs (created_at, seq) WHERE request IS NOT NULL",
    ),
)

_COLUMNS = "id, status, stage, progress, document_id, error, created_at, finished_at"

_INSERT = """
    INSERT INTO jobs
        (id, status, stage, progress, document_id, error, created_at, finished_at, request)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING
"""
# A stage's rank, in SQL (constants from the Stage enum, never input).
_RANK = "CASE stage {} END".format(" ".join(f"WHEN '{s.value}' THEN {s.rank}" for s in Stage))
# Forward only: a finished job is final and a stage never goes back (see JobStore.update).
_UPDATE = f"""
    UPDATE jobs SET status = ?, stage = ?, progress = ?, document_id = ?, error = ?,
                    finished_at = ?, request = CASE WHEN ? THEN NULL ELSE request END
    WHERE id = ? AND status NOT IN ('COMPLETED', 'FAILED') AND {_RANK} <= ?
"""  # noqa: S608
_EXISTS = "SELECT 1 FROM jobs WHERE id = ?"
_GET = f"SELECT {_COLUMNS} FROM jobs WHERE id IN (SELECT value FROM json_each(?))"  # noqa: S608
_UNFINISHED = """
    SELECT request FROM jobs
    WHERE request IS NOT NULL AND status NOT IN ('COMPLETED', 'FAILED')
    ORDER BY created_at, seq
"""


class SqliteJobStore:
    """Ingestion jobs in one SQLite file at ``path`` (parent directories are created)."""

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
                    conn, application_id=JOB_APPLICATION_ID, steps=JOB_MIGRATIONS, what="job"
                )
            except BaseException:
                await conn.close()
                raise
            self._conn = conn

    async def close(self) -> None:
        async with self._lifecycle:
            conn, self._conn = self._conn, None
            if conn is not None:
                with translate_errors("closing the job store"):
                    await conn.close()

    async def create(self, job: IngestionJob, request: IngestionRequest | None) -> None:
        if request is not None and request.job_id != job.id:
            raise BadInputError(f"request of job {request.job_id} given for job {job.id}")
        stored = None if request is None or job.status.finished else _encode_request(request)
        conn = self._started()
        with translate_errors("recording a job"):
            async with conn.execute(_INSERT, (*_job_values(job), stored)) as cursor:
                inserted = cursor.rowcount
        if inserted == 0:
            raise ConflictError(f"job {job.id} already exists", job_id=job.id)

    async def update(self, job: IngestionJob) -> bool:
        conn = self._started()
        params = (
            job.status.value,
            job.stage.value,
            job.progress,
            job.document_id,
            job.error,
            encode_optional_time(job.finished_at),
            job.status.finished,
            job.id,
            job.stage.rank,
        )
        with translate_errors("updating a job"):
            async with conn.execute(_UPDATE, params) as cursor:
                updated = cursor.rowcount
            if updated:
                return True
            exists = await conn.execute_fetchall(_EXISTS, (job.id,))
        if not exists:
            raise NotFoundError(f"no job {job.id}", job_id=job.id)
        return False

    async def get(self, ids: Sequence[str]) -> list[IngestionJob | None]:
        if not ids:
            return []
        conn = self._started()
        with translate_errors("reading jobs"):
            rows = await conn.execute_fetchall(_GET, (id_list(ids),))
        found = {row["id"]: _job(row) for row in rows}
        return [found.get(i) for i in ids]

    async def unfinished(self) -> list[IngestionRequest]:
        conn = self._started()
        with translate_errors("reading unfinished jobs"):
            rows = await conn.execute_fetchall(_UNFINISHED)
        return [_decode_request(row["request"]) for row in rows]

    def _started(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise UnavailableError("the SQLite job store is not started")
        return self._conn


def _job_values(job: IngestionJob) -> tuple[Any, ...]:
    return (
        job.id,
        job.status.value,
        job.stage.value,
        job.progress,
        job.document_id,
        job.error,
        encode_time(job.created_at),
        encode_optional_time(job.finished_at),
    )


def _job(row: Any) -> IngestionJob:
    return IngestionJob(
        id=row["id"],
        status=JobStatus(row["status"]),
        stage=Stage(row["stage"]),
        progress=row["progress"],
        document_id=row["document_id"],
        error=row["error"],
        created_at=decode_time(row["created_at"]),
        finished_at=decode_optional_time(row["finished_at"]),
    )


def _encode_request(request: IngestionRequest) -> str:
    return encode_json(request_fields(request), f"the request of job {request.job_id}")


def _decode_request(text: str) -> IngestionRequest:
    return request_from_fields(decode_json(text))
