"""The JobStore contract, run against every adapter in ``conftest.JOB_STORES``."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio
import redis.exceptions

from app.adapters.redis_job_store import RedisJobStore
from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.adapters.sqlite_job_store import SqliteJobStore
from app.domain import ids
from app.domain.errors import (
    BackendError,
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


async def test_update_only_moves_forward(job_store: JobStore) -> None:
    """After a rebalance two workers may hold one request: the slower one's late reports
    must not drag the job back, nor reopen a finished one."""
    job, request = queued()
    await job_store.create(job, request)
    embedded = advanced(job, Stage.EMBEDDED)
    assert await job_store.update(embedded) is True
    assert await job_store.update(advanced(job, Stage.CHUNKED)) is False  # behind: refused
    assert await job_store.get([job.id]) == [embedded]
    assert await job_store.update(embedded) is True  # the same stage again (a retry) is fine

    done = advanced(job, Stage.COMPLETED, JobStatus.COMPLETED)
    assert await job_store.update(done) is True
    for late in (
        advanced(job, Stage.STORED),
        advanced(job, Stage.FAILED, JobStatus.FAILED),
        advanced(job, Stage.COMPLETED, JobStatus.COMPLETED),
    ):
        assert await job_store.update(late) is False  # finished is final
    assert await job_store.get([job.id]) == [done]
    assert await job_store.unfinished() == []

    other, other_request = queued(T0, "Failed early")
    await job_store.create(other, other_request)
    failed = advanced(other, Stage.FAILED, JobStatus.FAILED)
    assert await job_store.update(failed) is True
    assert await job_store.update(advanced(other, Stage.CHUNKED)) is False
    assert await job_store.get([other.id]) == [failed]


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


async def test_jobs_created_at_one_instant_keep_their_creation_order(
    job_store: JobStore,
) -> None:
    pairs = [queued(T0, f"Same instant {i}") for i in range(5)]
    for job, request in pairs:
        await job_store.create(job, request)
    assert await job_store.unfinished() == [request for _, request in pairs]


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


async def test_two_stores_on_one_backend_share_jobs(
    make_job_store: Callable[[], JobStore], job_store: JobStore
) -> None:
    """What lets any API process read a job: a second store on the same backend (another
    process, in production) sees every write of the first at once, and the other way."""
    other = make_job_store()
    await other.start()
    try:
        job, request = queued()
        await job_store.create(job, request)
        assert await other.get([job.id]) == [job]
        assert await other.unfinished() == [request]
        with pytest.raises(ConflictError):
            await other.create(job, request)

        running = advanced(job, Stage.EXTRACTED)
        await other.update(running)
        assert await job_store.get([job.id]) == [running]
        done = advanced(job, Stage.COMPLETED, JobStatus.COMPLETED)
        await job_store.update(done)
        assert await other.get([job.id]) == [done]
        assert await other.unfinished() == []

        pairs = [queued(T0 + timedelta(seconds=i), f"Shared {i}") for i in range(10)]
        stores = (job_store, other)
        await asyncio.gather(
            *(stores[i % 2].create(job, req) for i, (job, req) in enumerate(pairs))
        )
        expected = [req for _, req in pairs]
        assert await job_store.unfinished() == expected
        assert await other.unfinished() == expected

        raced, raced_request = queued(title="Raced")
        outcomes = await asyncio.gather(
            job_store.create(raced, raced_request),
            other.create(raced, raced_request),
            return_exceptions=True,
        )
        assert sorted(type(o).__name__ for o in outcomes) == ["ConflictError", "NoneType"]
    finally:
        await other.close()


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


# --- Redis only -------------------------------------------------------------------------

_REDIS_URL = os.environ.get("KG_TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(
    not _REDIS_URL, reason="KG_TEST_REDIS_URL is not set: no Redis server to test against"
)
RedisStoreFactory = Callable[..., RedisJobStore]


@pytest.fixture
async def redis_raw() -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client on the test server, to look at and tamper with the stored keys."""
    client = redis.asyncio.Redis.from_url(_REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def make_redis_store(redis_raw: redis.asyncio.Redis) -> AsyncIterator[RedisStoreFactory]:
    """Started stores in a namespace of this test's own; its keys are deleted after."""
    namespace = f"kgtest-{uuid.uuid4().hex[:16]}"
    built: list[RedisJobStore] = []

    def make(suffix: str = "", **kwargs: Any) -> RedisJobStore:
        store = RedisJobStore(_REDIS_URL, namespace + suffix, **kwargs)
        built.append(store)
        return store

    yield make
    for store in built:
        await store.close()
    keys = [key async for key in redis_raw.scan_iter(match=f"{namespace}*:*")]
    if keys:
        await redis_raw.delete(*keys)


@needs_redis
async def test_redis_keeps_an_index_of_unfinished_jobs_and_expires_finished_ones(
    make_redis_store: RedisStoreFactory, redis_raw: redis.asyncio.Redis
) -> None:
    store = make_redis_store(finished_ttl=3600)
    await store.start()
    job, request = queued()
    key, index = f"{store.namespace}:job:{job.id}", f"{store.namespace}:jobs:unfinished"
    await store.create(job, request)
    stored = await redis_raw.hgetall(key)
    assert stored["status"] == "QUEUED"
    assert stored["created_at"] == "2024-05-01T12:00:00.000000+00:00"
    assert "Zürich, 東京, 🚀" in stored["request"]
    assert await redis_raw.zrange(index, 0, -1) == [stored["pending"]]
    assert await redis_raw.ttl(key) == -1  # unfinished: never expires

    await store.update(advanced(job, Stage.EMBEDDED))
    assert await redis_raw.ttl(key) == -1
    await store.update(advanced(job, Stage.FAILED, JobStatus.FAILED))
    stored = await redis_raw.hgetall(key)
    assert "request" not in stored and "pending" not in stored
    assert stored["error"] == "extractor crashed"
    assert await redis_raw.zcard(index) == 0
    assert 3500 < await redis_raw.ttl(key) <= 3600

    assert await store.update(advanced(job, Stage.CHUNKED)) is False  # finished is final
    assert 3500 < await redis_raw.ttl(key) <= 3600
    assert await store.unfinished() == []  # its request went when it finished


@needs_redis
async def test_redis_finished_jobs_disappear_after_their_ttl(
    make_redis_store: RedisStoreFactory,
) -> None:
    store = make_redis_store(finished_ttl=0.2)
    await store.start()
    (done, done_req), (open_, open_req), (born_done, born_req) = (
        queued(T0, "Done"),
        queued(T0, "Open"),
        queued(T0, "Born done"),
    )
    await store.create(done, done_req)
    await store.create(open_, open_req)
    await store.create(advanced(born_done, Stage.COMPLETED, JobStatus.COMPLETED), born_req)
    await store.update(advanced(done, Stage.COMPLETED, JobStatus.COMPLETED))
    await asyncio.sleep(0.4)
    assert await store.get([done.id, open_.id, born_done.id]) == [None, open_, None]
    assert await store.unfinished() == [open_req]
    with pytest.raises(NotFoundError):
        await store.update(advanced(done, Stage.FAILED, JobStatus.FAILED))


@needs_redis
async def test_redis_namespaces_do_not_see_each_other(
    make_redis_store: RedisStoreFactory,
) -> None:
    first, second = make_redis_store(), make_redis_store("-other")
    await first.start()
    await second.start()
    job, request = queued()
    await first.create(job, request)
    assert await second.get([job.id]) == [None]
    assert await second.unfinished() == []
    await second.create(job, request)  # no conflict in another namespace
    await second.update(advanced(job, Stage.COMPLETED, JobStatus.COMPLETED))
    assert await first.unfinished() == [request]


@needs_redis
async def test_redis_data_of_the_wrong_shape_is_a_backend_error(
    make_redis_store: RedisStoreFactory, redis_raw: redis.asyncio.Redis
) -> None:
    store = make_redis_store()
    await store.start()
    await redis_raw.hset(
        f"{store.namespace}:job:job_bad",
        mapping={"status": "LOST", "stage": "QUEUED", "progress": "0.0"},
    )
    with pytest.raises(BackendError, match="job_bad"):
        await store.get(["job_bad"])
    await redis_raw.set(f"{store.namespace}:job:job_str", "not a hash")
    await redis_raw.set(f"{store.namespace}:jobs:unfinished", "not a sorted set")
    for call in (store.get(["job_str"]), store.unfinished()):
        with pytest.raises(BackendError) as caught:
            await call
        assert not caught.value.retryable
        assert isinstance(caught.value.__cause__, redis.exceptions.ResponseError)


@needs_redis
async def test_redis_refused_credentials_are_a_configuration_error() -> None:
    server = urlsplit(_REDIS_URL)
    secret = "s3cret-Passw0rd"
    store = RedisJobStore(f"redis://nobody:{secret}@{server.netloc.rpartition('@')[2]}/0")
    with pytest.raises(ConfigurationError) as caught:
        await store.start()
    assert secret not in str(caught.value)
    assert isinstance(caught.value.__cause__, redis.exceptions.AuthenticationError)
    with pytest.raises(UnavailableError, match="not started"):
        await store.get(["job_x"])


# --- Redis without a server -----------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_redis_unreachable_at_start_is_unavailable_and_names_the_server() -> None:
    port = _closed_port()
    store = RedisJobStore(f"redis://:pw-never-shown@127.0.0.1:{port}/3", timeout=1)
    with pytest.raises(UnavailableError) as caught:
        await store.start()
    assert caught.value.retryable
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "pw-never-shown" not in str(caught.value)
    assert isinstance(caught.value.__cause__, redis.exceptions.ConnectionError)
    for call in (store.create(*queued()), store.update(queued()[0]), store.unfinished()):
        with pytest.raises(UnavailableError, match="not started"):
            await call
    await store.close()  # closing a store that never started is fine


async def test_redis_that_never_answers_times_out_as_unavailable() -> None:
    """A peer that accepts the connection and stays silent: the timeout must fire."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        store = RedisJobStore(f"redis://127.0.0.1:{port}/0", timeout=0.2)
        with pytest.raises(UnavailableError) as caught:
            await store.start()
        assert caught.value.retryable
        assert isinstance(caught.value.__cause__, redis.exceptions.TimeoutError)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("http://127.0.0.1:6379/0", {}, "scheme"),
        ("127.0.0.1:6379", {}, "scheme"),
        ("redis://:hunter2@127.0.0.1:port/0", {}, "Redis URL"),
        ("redis://:hunter2@127.0.0.1:6379/zero", {}, "Redis URL"),
        ("redis://:hunter2@127.0.0.1:6379/0?socket_timeout=soon", {}, "Redis URL"),
        ("redis://127.0.0.1:6379/0", {"namespace": ""}, "namespace"),
        ("redis://127.0.0.1:6379/0", {"namespace": "a:b"}, "namespace"),
        ("redis://127.0.0.1:6379/0", {"finished_ttl": 0}, "finished_ttl"),
        ("redis://127.0.0.1:6379/0", {"timeout": 0}, "timeout"),
    ],
)
def test_redis_bad_configuration_is_refused(url: str, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as caught:
        RedisJobStore(url, **kwargs)
    assert "hunter2" not in str(caught.value)
