"""SQLite only: a keyword search split by chunk seq across idle readers finds exactly
what the search in one piece finds (same chunks, scores and order, with and without
filters, for every k); it is split only when readers are idle, and only into ranges of
``keyword_part_rows`` chunks or more."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.adapters.sqlite_graph_sql import CHUNK_SEQ_RANGE
from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.domain.errors import ConfigurationError
from app.domain.models import ChunkFilter
from tests.contract.bundles import all_bundles
from tests.contract.sqlite_reads import record_reads

QUERIES = ("Babbage London engine", "worked", "the", "Babbage Turing loom", "engine")


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteGraphStore, SqliteGraphStore]]:
    """The same file twice: split into ranges of one chunk on two readers, and never
    split (one reader)."""
    path = tmp_path / "graph.sqlite3"
    split = SqliteGraphStore(path, readers=2, keyword_part_rows=1)
    whole = SqliteGraphStore(path, readers=1)
    await split.start()
    await whole.start()
    try:
        for bundle in all_bundles():
            await split.write_document(bundle)
        yield split, whole
    finally:
        await whole.close()
        await split.close()


def keyword_readers(reads: list[tuple[int, str]]) -> list[int]:
    """The readers (by index) the keyword statements among ``reads`` went to, in order."""
    return [n for n, query in reads if "chunks_fts MATCH" in query]


async def test_a_split_search_finds_what_the_whole_search_finds(
    stores: tuple[SqliteGraphStore, SqliteGraphStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    split, whole = stores
    reads = record_reads(split, monkeypatch)
    bundles = all_bundles()
    filters = [
        ChunkFilter(),
        ChunkFilter(document_ids=tuple(b.document.id for b in bundles)),
        ChunkFilter(document_ids=(bundles[0].document.id,)),
        ChunkFilter(entity_types=("PERSON",)),
    ]
    compared = 0
    for query in QUERIES:
        for f in filters:
            full = await whole.keyword_search(query, 50, f)
            for k in range(1, len(full) + 2):
                before = len(reads)
                assert await split.keyword_search(query, k, f) == full[:k], (query, f, k)
                assert keyword_readers(reads[before:]) == [0, 1]  # a range on each reader
                compared += 1
    assert compared > 40


async def test_a_busy_store_searches_in_one_piece(
    stores: tuple[SqliteGraphStore, SqliteGraphStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    split, whole = stores
    gate = asyncio.Event()
    original = split._readers[0].execute_fetchall

    async def held(*args: Any) -> Any:
        await gate.wait()
        return await original(*args)

    monkeypatch.setattr(split._readers[0], "execute_fetchall", held)
    busy = asyncio.create_task(split.stats())  # in flight on reader 0 until the gate opens
    await asyncio.sleep(0.05)
    assert split._in_flight == [1, 0]
    reads = record_reads(split, monkeypatch)
    hits = await split.keyword_search("Babbage London engine", 10, ChunkFilter())
    assert hits == await whole.keyword_search("Babbage London engine", 10, ChunkFilter())
    assert keyword_readers(reads) == [1]  # one statement, on the idle reader
    gate.set()
    assert (await busy).documents == len(all_bundles())


async def test_a_small_store_is_not_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteGraphStore(tmp_path / "graph.sqlite3", readers=2)  # default part size
    await store.start()
    try:
        for bundle in all_bundles():
            await store.write_document(bundle)
        reads = record_reads(store, monkeypatch)
        assert await store.keyword_search("engine", 5, ChunkFilter())
        assert keyword_readers(reads) == [0]
    finally:
        await store.close()


async def test_an_empty_store_is_not_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No chunks, no seq range (min and max are NULL): nothing found, no FTS statement."""
    store = SqliteGraphStore(tmp_path / "graph.sqlite3", readers=2, keyword_part_rows=1)
    await store.start()
    try:
        reads = record_reads(store, monkeypatch)
        assert await store.keyword_search("engine", 5, ChunkFilter()) == []
        assert keyword_readers(reads) == []
    finally:
        await store.close()


@pytest.mark.parametrize("rows", [0, -1])
def test_a_part_size_below_one_is_a_configuration_error(tmp_path: Path, rows: int) -> None:
    with pytest.raises(ConfigurationError, match="keyword_part_rows"):
        SqliteGraphStore(tmp_path / "graph.sqlite3", keyword_part_rows=rows)


async def test_the_seq_range_is_read_by_index_seeks_not_a_scan(tmp_path: Path) -> None:
    """Read on the event loop's thread before every split search: a scan of the chunks
    table there (what min() and max() in one SELECT do) would hold the loop."""
    store = SqliteGraphStore(tmp_path / "graph.sqlite3")
    await store.start()
    await store.close()
    with sqlite3.connect(tmp_path / "graph.sqlite3") as db:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + CHUNK_SEQ_RANGE)]
    assert plan and not any(step.startswith("SCAN chunks") for step in plan), plan
    assert sum(step.startswith("SEARCH chunks") for step in plan) == 2
