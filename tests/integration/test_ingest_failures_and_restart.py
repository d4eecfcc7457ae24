"""A failure mid-pipeline leaves nothing half-written; data and unfinished jobs survive a
restart, and a request the bus refuses fails its job. Real stores and models throughout;
the only stand-ins are wrappers of the real graph store and bus that fail on purpose."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.adapters.memory_event_bus import MemoryEventBus
from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.config import load_settings
from app.container import Container, build_container
from app.domain.errors import BackendError, UnavailableError
from app.domain.ids import document_id
from app.domain.models import (
    ChunkFilter,
    DocumentBundle,
    DocumentInput,
    IngestionJob,
    IngestionRequest,
    JobStatus,
)
from app.pipeline.normalise import normalise, normalise_title
from app.pipeline.progress import JobTracker
from app.services.search import SearchMode

TEXT = "Ada Lovelace worked with Charles Babbage in London on the Analytical Engine."


class FailingWrites:
    """The real SQLite store, except that ``write_document`` fails while ``failing``."""

    def __init__(self, inner: SqliteGraphStore) -> None:
        self._inner = inner
        self.failing = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write_document(self, bundle: DocumentBundle) -> None:
        if self.failing:
            raise BackendError("disk full (simulated)")
        await self._inner.write_document(bundle)


async def wait(container: Container, job: str) -> IngestionJob:
    async with asyncio.timeout(120):
        while True:
            state = (await container.ingestion.jobs([job]))[0]
            assert state is not None
            if state.status.finished:
                return state
            await asyncio.sleep(0.05)


async def test_failed_graph_write_leaves_nothing(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    graph = FailingWrites(SqliteGraphStore(tmp_path / "graph.sqlite3"))
    container = build_container(settings, graph=graph)
    await container.start()
    try:
        job = (await container.ingestion.submit([DocumentInput(title="Ada", text=TEXT)]))[0]
        failed = await wait(container, job.id)
        assert failed.status is JobStatus.FAILED
        assert failed.error and "disk full" in failed.error
        stats = await container.catalog.stats()
        assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (0, 0, 0, 0)
        assert await container.vectors.count() == 0  # the vectors written first were undone

        graph.failing = False  # the disk has room again: the same document goes in whole
        again = (await container.ingestion.submit([DocumentInput(title="Ada", text=TEXT)]))[0]
        done = await wait(container, again.id)
        assert done.status is JobStatus.COMPLETED
        stats = await container.catalog.stats()
        assert stats.documents == 1 and stats.chunks == await container.vectors.count()
    finally:
        await container.close()


async def test_data_and_unfinished_jobs_survive_a_restart(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    first = build_container(settings)
    await first.start()
    job = (await first.ingestion.submit([DocumentInput(title="Ada", text=TEXT)]))[0]
    await wait(first, job.id)
    # A job accepted just before the process stopped, never run:
    pending_doc = DocumentInput(title="Grace", text="Grace Hopper worked at Harvard University.")
    tracker = JobTracker(first.jobs, first.bus)
    pending = tracker.new_job("job_pending", document_id(pending_doc.title, pending_doc.text))
    await first.jobs.create(
        pending,
        IngestionRequest(
            job_id=pending.id, document_id=pending.document_id or "", input=pending_doc
        ),
    )
    await first.close()

    second = build_container(settings)
    await second.start()
    try:
        resumed = await wait(second, "job_pending")
        assert resumed.status is JobStatus.COMPLETED
        stats = await second.catalog.stats()
        assert stats.documents == 2
        assert await second.vectors.count() == stats.chunks
        ada = document_id(normalise_title("Ada"), normalise(TEXT))
        assert (await second.catalog.documents([ada]))[0] is not None
        hits = await second.search.search("Babbage", 5, SearchMode.KEYWORD, ChunkFilter())
        assert [h.document_id for h in hits] == [ada]
    finally:
        await second.close()


class UnreachableBus:
    """The real in-process bus, except that requests cannot be published (a broker down)."""

    def __init__(self, inner: MemoryEventBus) -> None:
        self._inner = inner
        self.refused: list[IngestionRequest] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def publish_request(self, request: IngestionRequest) -> None:
        self.refused.append(request)
        raise UnavailableError("Kafka at 127.0.0.1:9 is unreachable (simulated)")


async def test_request_the_bus_refuses_fails_its_job_instead_of_leaving_it_queued(
    tmp_path: Path,
) -> None:
    bus = UnreachableBus(MemoryEventBus())
    container = build_container(load_settings(data_dir=tmp_path), bus=bus)
    await container.start(workers=False)
    try:
        docs = [DocumentInput(title="Ada", text=TEXT), DocumentInput(title="Bo", text=TEXT)]
        with pytest.raises(UnavailableError, match="unreachable"):
            await container.ingestion.submit(docs)
        assert len(bus.refused) == 1  # the batch stops at the first refusal
        job = (await container.ingestion.jobs([bus.refused[0].job_id]))[0]
        assert job is not None and job.status is JobStatus.FAILED
        assert job.error == (
            "could not queue the document: Kafka at 127.0.0.1:9 is unreachable (simulated)"
        )
        assert await container.jobs.unfinished() == []  # nothing left to resume or stuck
    finally:
        await container.close()
