"""SQLite only: reads are spread over the query-only connections, each read going to
the one with the fewest reads in flight, so a request's concurrent reads (and two
requests' reads) run side by side; closing closes them all."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.adapters.sqlite_graph_store import DEFAULT_READERS, SqliteGraphStore
from app.domain.errors import ConfigurationError, UnavailableError
from tests.contract.bundles import babbage_bundle


async def test_a_read_goes_to_the_reader_with_the_fewest_reads_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteGraphStore(tmp_path / "graph.sqlite3")
    await store.start()
    try:
        await store.write_document(babbage_bundle())
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
        reads = [asyncio.create_task(store.version()) for _ in range(4)]
        await asyncio.wait_for(all_in.wait(), 10)
        assert served == [0, 1, 0, 1]  # never two in flight on one while the other idles
        gate.set()
        assert await asyncio.gather(*reads) == [1, 1, 1, 1]
        monkeypatch.undo()
        assert store._in_flight == [0, 0]
    finally:
        await store.close()


async def test_one_reader_serves_every_read(tmp_path: Path) -> None:
    store = SqliteGraphStore(tmp_path / "graph.sqlite3", readers=1)
    await store.start()
    try:
        await store.write_document(babbage_bundle())
        results = await asyncio.gather(*(store.version() for _ in range(5)))
        assert results == [1] * 5
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
    with pytest.raises(UnavailableError, match="not started"):
        await store.version()
