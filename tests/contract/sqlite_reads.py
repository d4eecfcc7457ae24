"""A spy on the SQLite graph store's threaded readers, for tests of where reads go."""

from __future__ import annotations

from typing import Any

import pytest

from app.adapters.sqlite_graph_store import SqliteGraphStore


def record_reads(store: SqliteGraphStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """(reader index, statement) of every read that goes through ``store``'s threaded
    readers from now on, in the order they start; the reads still run."""
    reads: list[tuple[int, str]] = []
    for n, conn in enumerate(store._readers):
        original = conn.execute_fetchall

        async def recorded(query: str, *args: Any, _n: int = n, _run: Any = original) -> Any:
            reads.append((_n, query))
            return await _run(query, *args)

        monkeypatch.setattr(conn, "execute_fetchall", recorded)
    return reads
