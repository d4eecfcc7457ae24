"""The JobStore contract, run against every adapter in ``conftest.JOB_STORES``."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.adapters.sqlite_job_store import SqliteJobStore
from app.domain import ids
from app.domain.errors import (
    BadInputError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    UnavailableError,
)
from app.domain.models import (
    DocumentInput,
    IngestionJob,
    IngestionRequest,
    JobStatus,
    Stage,
)
from app.ports.job_store import JobStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def queued(at: datetime = T0, title: str = "A title") -> tuple[IngestionJob, IngestionRequest]:
    """A fresh job and the request that runs it."""
    text = f"Some text about {title}, with unicode: Zürich, 東京, 🚀."
    doc_id = ids.document_id(title, text)
    job = IngestionJob(
        id=ids.job_id(),
        status=JobStatus.QUEUED,
        stage=Stage.QUEUED,
        progress=0.0,
        document_id=doc_id,
        error=None,
        created_at=at,
    )
    request = IngestionRequest(
        job_id=job.id,
        document_id=doc_id,
        input=DocumentInput(
            title=title,
            text=text,
            source="https://example.org/a",
            published_at=datetime(2020, 2, 29, 23, 59, 59, 123456, tzinfo=UTC),
            metadata={"lang": "en", "nested": {"n": 1, "list": [1, "two", None]}},
        ),
        request_id="req-123",
    )
    return job, request


def advanced(
    job: IngestionJob, stage: Stage, status: JobStatus = JobStatus.RUNNING
) -> IngestionJob:
    finished = status.finished
    return dataclasses.replace(
        job,
        status=status,
        stage=stage,
        progress=stage.progress,
        error="extractor crashed" if status is JobStatus.FAILED else None,
        finished_at=job.created_at + timedelta(seconds=30) if finished else None,
    )


async def test_create_and_get_round_trip(job_store: JobStore) -> None:
    job, request = queued()
    other, _ = queued(title="Other")
    await job_store.create(job, request)
    await job_store.create(other, None)
    assert await job_store.get([other.id, "job_unknown", job.id]) == [other, None, job]
    assert await job_store.get([]) == []
    (got,) = await job_store.get([job.id])
    assert got is not None
    assert got.created_at.tzinfo is not None


async def test_create_twice_is_a_conflict(job_store: JobStore) -> None:
    job, request = queued()
    await job_store.create(job, request)
    with pytest.raises(ConflictError):
        await job_store.create(advanced(job, Stage.CHUNKED), request)
    assert await job_store.get([job.id]) == [job]


async def test_request_must_belong_to_the_job(job_store: JobStore) -> None:
    job, _ = queued()
    _, foreign = queued(title="Someone else's")
    with pytest.raises(BadInputError):
        await job_store.create(job, foreign)
    assert await job_store.get([job.id]) == [None]


async def test_request_that_is_not_json_is_bad_input(job_store: JobStore) -> None:
    job, request = queued()
    weird = dataclasses.replace(
        request, input=dataclasses.replace(request.input, metadata={"x": {1, 2}})
    )
    with pytest.raises(BadInputError):
        await job_store.create(job, weird)
    assert await job_store.get([job.id]) == [None]


async def test_update_moves_a_job_through_its_stages(job_store: JobStore) -> None:
    job, request = queued()
    await job_store.create(job, request)
    for stage in (Stage.CHUNKED, Stage.EXTRACTED, Stage.EMBEDDED):
        step = advanced(job, stage)
        await job_store.update(step)
        assert await job_store.get([job.id]) == [step]
    done = advanced(job, Stage.COMPLETED, JobStatus.COMPLETED)
    await job_store.update(done)
    (got,) = await job_store.get([job.id])
    assert got == done
    assert got is not None
    assert got.finished_at == T0 + timedelta(seconds=30)
    assert got.created_at == T0  # never rewritten


async def test_update_of_an_unknown_job_is_not_found(job_store: JobStore) -> None:
    job, _ = queued()
    with pytest.raises(NotFoundError):
        await job_store.update(job)
    assert await job_store.get([job.id]) == [None]


async def test_unfinished_returns_requests_oldest_first(job_store: JobStore) -> None:
    late_job, late_req = queued(T0 + timedelta(minutes=5), "Late")
    early_job, early_req = queued(T0, "Early")
    middle_job, middle_req = queued(T0 + timedelta(minutes=1), "Middle")
    done_job, done_req = queued(T0 + timedelta(minutes=2), "Done")
    failed_job, failed_req = queued(T0 + timedelta(minutes=3), "Failed")
    bare_job, _ = queued(T0 + timedelta(minutes=4), "No request")
    for job, request in [
        (late_job, late_req),
        (early_job, early_req),
        (middle_job, middle_req),
        (done_job, done_req),
        (failed_job, failed_req),
    ]:
        await job_store.create(job, request)
    await job_store.create(bare_job, None)
    await job_store.update(advanced(middle_job, Stage.EXTRACTED))  # RUNNING stays unfinished
    await job_store.update(advanced(done_job, Stage.COMPLETED, JobStatus.COMPLETED))
    await job_store.update(advanced(failed_job, Stage.FAILED, JobStatus.FAILED))

    assert await job_store.unfinished() == [early_req, middle_req, late_req]
    (failed,) = await job_store.get([failed_job.id])
    assert failed is not None
    assert failed.error == "extractor crashed"


async def test_requests_round_trip_every_field(job_store: JobStore) -> None:
    job, _ = queued()
    plain = IngestionRequest(
        job_id=job.id,
        document_id="doc_x",
        input=DocumentInput(title="Only a title", text="And text."),
    )
    await job_store.create(job, plain)
    other, full = queued(T0 + timedelta(seconds=1), "Full")
    await job_store.create(other, full)
    got = await job_store.unfinished()
    assert got == [plain, full]
    assert got[1].input.published_at == datetime(2020, 2, 29, 23, 59, 59, 123456, tzinfo=UTC)
    assert got[1].input.metadata == {"lang": "en", "nested": {"n": 1, "list": [1, "two", None]}}


async def test_a_job_created_finished_keeps_no_request(job_store: JobStore) -> None:
    job, request = queued()
    done = advanced(job, Stage.COMPLETED, JobStatus.COMPLETED)
    await job_store.create(done, request)
    assert await job_store.unfinished() == []
    assert await job_store.get([job.id]) == [done]


async def test_concurrent_creates_and_updates(job_store: JobStore) -> None:
    pairs = [queued(T0 + timedelta(seconds=i), f"Doc {i}") for i in range(20)]
    await asyncio.gather(*(job_store.create(job, req) for job, req in pairs))
    await asyncio.gather(
        *(
            job_store.update(advanced(job, Stage.COMPLETED, JobStatus.COMPLETED))
            for job, _ in pairs[::2]
        )
    )
    assert await job_store.unfinished() == [req for _, req in pairs[1::2]]
    got = await job_store.get([job.id for job, _ in pairs])
    assert all(g is not None for g in got)


async def test_jobs_survive_close_and_reopen(
    make_job_store: Callable[[], JobStore], job_store: JobStore
) -> None:
    job, request = queued()
    running = advanced(job, Stage.CHUNKED)
    await job_store.create(job, request)
    await job_store.update(running)
    await job_store.start()  # idempotent
    await job_store.close()
    reopened = make_job_store()
    await reopened.start()
    try:
        assert await reopened.get([job.id]) == [running]
        assert await reopened.unfinished() == [request]
    finally:
        await reopened.close()


async def test_calls_after_close_are_unavailable(job_store: JobStore) -> None:
    await job_store.close()
    with pytest.raises(UnavailableError):
        await job_store.get(["job_x"])
    with pytest.raises(UnavailableError):
        await job_store.unfinished()
    await job_store.close()


# --- SQLite only ------------------------------------------------------------------------


async def test_sqlite_clears_the_request_text_of_finished_jobs(tmp_path: Path) -> None:
    path = tmp_path / "jobs" / "jobs.sqlite3"
    store = SqliteJobStore(path)
    await store.start()
    job, request = queued()
    await store.create(job, request)
    await store.update(advanced(job, Stage.FAILED, JobStatus.FAILED))
    await store.close()
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT status, request FROM jobs WHERE id = ?", (job.id,)).fetchone()
    finally:
        conn.close()
    assert row == ("FAILED", None)


async def test_sqlite_job_store_refuses_the_graph_file(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite3"
    graph = SqliteGraphStore(path)
    await graph.start()
    await graph.close()
    with pytest.raises(ConfigurationError, match="not a job database"):
        await SqliteJobStore(path).start()
