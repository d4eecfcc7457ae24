"""SQLite only: the folded titles a title filter reads (schema step 3) follow every
write, rename and delete, and a file from before step 3 gets them when it is opened."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.adapters.sqlite_schema import GRAPH_APPLICATION_ID, GRAPH_MIGRATIONS
from app.adapters.sqlite_support import migrate, open_connection
from app.domain.models import DocumentFilter, PageRequest
from tests.contract.bundles import babbage_bundle

ALL = PageRequest(0, 100)


async def titled(store: SqliteGraphStore, text: str) -> list[str]:
    page = await store.list_documents(DocumentFilter(title_contains=text), ALL)
    return [d.id for d in page.items]


def folded_titles(path: Path) -> dict[str, str]:
    check = sqlite3.connect(path)
    try:
        return dict(check.execute("SELECT document_id, folded FROM document_titles"))
    finally:
        check.close()


async def test_a_file_from_before_step_3_gets_folded_titles_on_open(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite3"
    conn = await open_connection(path, busy_timeout_ms=1_000)
    try:
        await migrate(
            conn, application_id=GRAPH_APPLICATION_ID, steps=GRAPH_MIGRATIONS[:2], what="graph"
        )
        await conn.execute(
            "INSERT INTO documents (id, title, text, source, published_at, ingested_at, "
            "metadata, chunk_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                "doc_old",
                "Notes on ÅNGSTRÖM Units",
                "text",
                None,
                None,
                "2026-01-01T00:00:00.000000Z",
                None,
                0,
            ),
        )
    finally:
        await conn.close()
    store = SqliteGraphStore(path)
    await store.start()
    try:
        assert await titled(store, "ångström") == ["doc_old"]
        assert await titled(store, "angstrom") == []  # case folded, accents kept: as before
        assert folded_titles(path) == {"doc_old": "notes on ångström units"}
    finally:
        await store.close()
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(GRAPH_MIGRATIONS)
    finally:
        check.close()


async def test_folded_titles_follow_writes_renames_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite3"
    store = SqliteGraphStore(path)
    await store.start()
    try:
        bundle = babbage_bundle()
        doc_id = bundle.document.id
        await store.write_document(bundle)
        assert folded_titles(path) == {doc_id: bundle.document.title.casefold()}
        renamed = dataclasses.replace(
            bundle, document=dataclasses.replace(bundle.document, title="ΣΊΣΥΦΟΣ Straße")
        )
        await store.write_document(renamed)
        assert folded_titles(path) == {doc_id: "σίσυφοσ strasse"}
        assert await titled(store, "STRASSE") == [doc_id]
        assert await titled(store, bundle.document.title) == []
        assert await store.delete_document(doc_id) is not None
        assert folded_titles(path) == {}
        assert await titled(store, "strasse") == []
    finally:
        await store.close()
