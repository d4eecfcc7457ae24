"""The worker runs documents in batches, yet one bad document fails alone, and a passing
backend outage is retried rather than failing the job. Real models and stores; the
wrappers below only inject the failures being tested."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.adapters.spacy_extractor import SpacyExtractor
from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.config import load_settings
from app.container import Container, build_container
from app.domain.errors import UnavailableError
from app.domain.models import DocumentBundle, DocumentInput, JobStatus
from app.ports.models import ExtractedText


class PoisonedExtractor:
    """The real extractor, except that it raises on any text containing POISON."""

    def __init__(self) -> None:
        self._inner = SpacyExtractor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def extract(self, texts: Sequence[str]) -> list[ExtractedText]:
        if any("POISON" in t for t in texts):
            raise ValueError("cannot read this text (simulated)")
        return self._inner.extract(texts)


class FlakyGraph:
    """The real SQLite store; its first ``failures`` writes are refused as unavailable."""

    def __init__(self, inner: SqliteGraphStore, failures: int) -> None:
        self._inner = inner
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write_document(self, bundle: DocumentBundle) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise UnavailableError("database is locked (simulated)")
        await self._inner.write_document(bundle)


async def finish(container: Container, jobs: list[str]) -> dict[str, JobStatus]:
    async with asyncio.timeout(180):
        while True:
            states = await container.ingestion.jobs(jobs)
            if all(s is not None and s.status.finished for s in states):
                return {s.id: s.status for s in states if s is not None}
            await asyncio.sleep(0.05)


async def test_one_bad_document_fails_alone(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, pipeline={"workers": 1})
    container = build_container(settings, extractor=PoisonedExtractor())
    await container.start()
    try:
        docs = [
            DocumentInput(title="Good 1", text="Marie Curie lived in Paris."),
            DocumentInput(title="Bad", text="This text carries POISON."),
            DocumentInput(title="Good 2", text="Alan Turing studied at Cambridge."),
        ]
        jobs = await container.ingestion.submit(docs)
        states = await finish(container, [j.id for j in jobs])
        assert [states[j.id] for j in jobs] == [
            JobStatus.COMPLETED,
            JobStatus.FAILED,
            JobStatus.COMPLETED,
        ]
        failed = (await container.ingestion.jobs([jobs[1].id]))[0]
        assert failed is not None and failed.error and "simulated" in failed.error
        assert (await container.catalog.stats()).documents == 2
    finally:
        await container.close()


async def test_passing_outage_is_retried(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    graph = FlakyGraph(SqliteGraphStore(tmp_path / "graph.sqlite3"), failures=1)
    container = build_container(settings, graph=graph)
    await container.start()
    try:
        jobs = await container.ingestion.submit(
            [DocumentInput(title="Retry", text="Grace Hopper worked at Harvard.")]
        )
        states = await finish(container, [jobs[0].id])
        assert states[jobs[0].id] is JobStatus.COMPLETED
        assert graph.failures == 0
        stats = await container.catalog.stats()
        assert stats.documents == 1
        assert await container.vectors.count() == stats.chunks  # the failed try left none extra
    finally:
        await container.close()
