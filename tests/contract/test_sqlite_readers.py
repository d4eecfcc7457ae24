"""SQLite only: reads are spread over the query-only connections, each read going to
the one with the fewest reads in flight, so a request's concurrent reads (and two
requests' reads) run side by side; closing closes them all. Point reads (the version,
records by a few ids) run on the event loop's thread instead, and go to a reader when
the file is busy or when they ask for many ids."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.adapters.sqlite_graph_sql import GET_CHUNKS, GRAPH_VERSION
from app.adapters.sqlite_graph_store import DEFAULT_READERS, INLINE_MAX_KEYS, SqliteGraphStore
from app.domain.errors import BackendError, ConfigurationError, UnavailableError
from tests.contract.bundles import babbage_bundle
from tests.contract.sqlite_reads import record_reads


@pytest.fixture
async def babbage_store(tmp_path: Path) -> AsyncIterator[SqliteGraphStore]:
    """A started store of default settings holding the Babbage document; closed after."""
    store = SqliteGraphStore(tmp_path / "graph.sqlite3")
    await store.start()
    try:
        await store.write_document(babbage_bundle())
        yield store
    finally:
        await store.close()


async def test_a_read_goes_to_the_reader_with_the_fewest_reads_in_flight(
    babbage_store: SqliteGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = babbage_store
    assert len(store._readers) == DEFAULT_READERS == 2
    served: list[int] = []
    gate, all_in = asyncio.Event(), asyncio.Event()
    for n, conn in enumerate(store._readers):
        original = conn.execute_fetchall

        async def held(*args: Any, _n: int = n, _run: Any = original) -> Any:
            served.append(_n)
            if len(served) == 4:
                all_in.set()
            await gate.wait()  # in flight until the gate opens
            return await _run(*args)

        monkeypatch.setattr(conn, "execute_fetchall", held)
    reads = [asyncio.create_task(store.stats()) for _ in range(4)]
    await asyncio.wait_for(all_in.wait(), 10)
    assert served == [0, 1, 0, 1]  # never two in flight on one while the other idles
    gate.set()
    assert [s.documents for s in await asyncio.gather(*reads)] == [1, 1, 1, 1]
    monkeypatch.undo()
    assert store._in_flight == [0, 0]


async def test_one_reader_serves_every_read(tmp_path: Path) -> None:
    store = SqliteGraphStore(tmp_path / "graph.sqlite3", readers=1)
    await store.start()
    try:
        await store.write_document(babbage_bundle())
        results = await asyncio.gather(*(store.stats() for _ in range(5)))
        assert [s.chunks for s in results] == [len(babbage_bundle().chunks)] * 5
    finally:
        await store.close()


async def test_no_reader_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="at least one reader"):
        SqliteGraphStore(tmp_path / "graph.sqlite3", readers=0)


async def test_reads_after_close_are_unavailable(tmp_path: Path) -> None:
    store = SqliteGraphStore(tmp_path / "graph.sqlite3")
    await store.start()
    await store.close()
    assert store._readers == []
    assert store._inline is None
    with pytest.raises(UnavailableError, match="not started"):
        await store.version()
    with pytest.raises(UnavailableError, match="not started"):
        await store.get_chunks(["c1"])
    with pytest.raises(UnavailableError, match="not started"):
        await store.stats()


async def test_point_reads_run_inline_and_large_ones_go_to_a_reader(
    babbage_store: SqliteGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, bundle = babbage_store, babbage_bundle()
    reads = record_reads(store, monkeypatch)
    ids = [c.id for c in bundle.chunks]
    assert await store.version() == 1
    assert [c.id if c else None for c in await store.get_chunks(ids)] == ids
    docs = await store.get_documents([bundle.document.id, "missing"])
    assert [d.title if d else None for d in docs] == [bundle.document.title, None]
    assert reads == []  # all inline
    many = ids + [f"missing-{n}" for n in range(INLINE_MAX_KEYS)]
    found = await store.get_chunks(many)
    assert [c.id for c in found if c] == ids and found[len(ids) :] == [None] * INLINE_MAX_KEYS
    assert [q for _, q in reads] == [GET_CHUNKS]  # past the bound: through a reader


class _BusyConnection:
    """Stands in for the inline connection, answering every statement as SQLite does
    when another connection holds the lock it needs. In WAL mode a reader meets that
    only during recovery of a crashed writer's WAL, which a test cannot stage reliably."""

    def execute(self, *args: object) -> sqlite3.Cursor:
        raise sqlite3.OperationalError("database is locked")


async def test_a_point_read_goes_to_a_reader_when_the_file_is_busy(
    babbage_store: SqliteGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # monkeypatch, set up after the store, gives the real connection back before it closes
    store, bundle = babbage_store, babbage_bundle()
    reads = record_reads(store, monkeypatch)
    monkeypatch.setattr(store, "_inline", _BusyConnection())
    assert await store.version() == 1
    chunks = await store.get_chunks([bundle.chunks[0].id])
    assert [c.id for c in chunks if c] == [bundle.chunks[0].id]
    assert [q for _, q in reads] == [GRAPH_VERSION, GET_CHUNKS]


async def test_an_inline_read_error_is_translated(babbage_store: SqliteGraphStore) -> None:
    with pytest.raises(BackendError, match="reading the graph version"):
        await babbage_store._point(
            "SELECT no_such_column FROM graph_version", {}, "reading the graph version"
        )
