"""Search hits through the schema on the embedded stores: their chunks and, when the
query selects ``document`` (directly or in a fragment), their documents, read in one
batch each, side by side; no document read when nothing asks for one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.config import load_settings
from app.container import Container, build_container
from app.domain.models import DocumentBundle
from app.observability.instrument import CallCounter
from app.security.authenticate import LOCAL_PRINCIPAL
from app.server import services_of
from graphql_schema.context import Context
from graphql_schema.schema import schema
from tests.contract.bundles import BundleBuilder

DOCUMENTS = 8  # two chunks each: all of them fit in k


def bundle(i: int) -> DocumentBundle:
    b = BundleBuilder(
        title=f"Harbour report {i}",
        ingested_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i),
    )
    b.chunk(f"The lighthouse keeper {i} logged the harbour tides at dawn.")
    b.chunk(f"Cargo ship {i} left the harbour with timber.")
    return b.build()


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    c = build_container(load_settings(data_dir=tmp_path))
    await c.start(workers=False)
    for i in range(DOCUMENTS):
        await c.graph.write_document(bundle(i))
    yield c
    await c.close()


async def run(c: Container, query: str) -> tuple[list[dict[str, Any]], dict[str, int]]:
    counter = CallCounter("graph")
    context = Context(
        services=services_of(c),
        request_id="test",
        principal=LOCAL_PRINCIPAL,
    )
    result = await schema.execute(query, context_value=context)
    assert result.errors is None, result.errors
    assert result.data is not None
    hits: list[dict[str, Any]] = result.data["search"]
    return hits, counter.calls_since()


def search(selection: str, fragments: str = "", words: str = "harbour") -> str:
    return f'{{ search(query: "{words}", k: 20, mode: KEYWORD) {{ {selection} }} }}{fragments}'


async def test_hits_with_documents_cost_one_read_of_each_kind(container: Container) -> None:
    hits, calls = await run(container, search("score text chunk { id } document { id title }"))
    assert len(hits) == 2 * DOCUMENTS
    assert calls == {"version": 1, "keyword_search": 1, "get_chunks": 1, "get_documents": 1}
    chunks = await container.graph.get_chunks([h["chunk"]["id"] for h in hits])
    docs = await container.graph.get_documents([c.document_id for c in chunks if c])
    for hit, chunk, doc in zip(hits, chunks, docs, strict=True):
        assert chunk is not None and doc is not None
        assert hit["text"] == chunk.text
        assert hit["document"] == {"id": doc.id, "title": doc.title}
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


async def test_hits_without_documents_read_none(container: Container) -> None:
    hits, calls = await run(container, search("score text chunk { id index }"))
    assert len(hits) == 2 * DOCUMENTS
    assert "get_documents" not in calls
    assert calls["get_chunks"] == 1
    assert all("harbour" in h["text"] for h in hits)


@pytest.mark.parametrize(
    ("selection", "fragments"),
    [
        ("score ... on SearchHit { document { title } }", ""),
        ("score ...HitDocument", " fragment HitDocument on SearchHit { document { title } }"),
        (
            "score ...Outer",
            " fragment Outer on SearchHit { ... on SearchHit { document { title } } }",
        ),
        ("score doc: document { title } again: document { id }", ""),
    ],
)
async def test_documents_asked_through_fragments_or_aliases_are_read_with_the_chunks(
    container: Container, selection: str, fragments: str
) -> None:
    hits, calls = await run(container, search(selection, fragments))
    assert len(hits) == 2 * DOCUMENTS
    assert calls["get_documents"] == 1
    for hit in hits:
        titles = [v["title"] for k, v in hit.items() if k in ("document", "doc") and v]
        assert titles and all(t.startswith("Harbour report") for t in titles)


async def test_the_document_of_a_hits_chunk_comes_from_the_same_batch(
    container: Container,
) -> None:
    query = search("document { id } chunk { document { id title } }")
    hits, calls = await run(container, query)
    assert calls["get_documents"] == 1, calls
    assert all(h["document"]["id"] == h["chunk"]["document"]["id"] for h in hits)


async def test_no_hit_reads_no_chunk_and_no_document(container: Container) -> None:
    hits, calls = await run(container, search("score document { id }", words="zeppelin"))
    assert hits == []
    assert "get_documents" not in calls
