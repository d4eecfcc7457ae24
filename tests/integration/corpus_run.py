"""Ingest the 20-paragraph corpus sample through the real container (used by the corpus
test, and runnable by hand: ``python -m tests.integration.corpus_run DIR``)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from app.config import load_settings
from app.container import Container, build_container
from app.domain.models import DocumentInput

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "corpus_sample.jsonl"


def sample_documents(limit: int = 20) -> list[DocumentInput]:
    """The first ``limit`` paragraphs of the fixture corpus (200 in all)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:limit]
    rows = [json.loads(line) for line in lines]
    return [DocumentInput(title=r["title"], text=r["text"], source=r.get("source")) for r in rows]


async def ingest_all(container: Container, docs: list[DocumentInput]) -> None:
    """Submit and wait until every job is COMPLETED (failing on any FAILED job)."""
    size = container.settings.limits.max_batch_documents
    pending: set[str] = set()
    for start in range(0, len(docs), size):
        pending |= {j.id for j in await container.ingestion.submit(docs[start : start + size])}
    async with asyncio.timeout(300):
        while pending:
            states = await container.ingestion.jobs(sorted(pending))
            for state in states:
                assert state is not None
                if state.status.finished:
                    assert state.status.value == "COMPLETED", state
                    pending.discard(state.id)
            await asyncio.sleep(0.1)


async def main(data_dir: Path) -> None:
    container = build_container(load_settings(data_dir=data_dir))
    await container.start()
    try:
        await ingest_all(container, sample_documents())
        stats = await container.catalog.stats()
        print(stats)
    finally:
        await container.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
