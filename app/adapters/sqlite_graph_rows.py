"""Rows of the SQLite graph store to domain records, and user words to an FTS5 query."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from app.adapters.sqlite_support import decode_json
from app.adapters.stored_text import decode_optional_time, decode_time
from app.domain.models import Chunk, Document, Entity, Evidence, Relation


def fts_any(words: Iterable[str]) -> str:
    """An FTS5 query matching any of ``words`` (folded words, as ``query_words`` gives)."""
    return " OR ".join(map(fts_string, words))


def fts_string(word: str) -> str:
    """A folded word as an FTS5 string: quoted, so no operator, column filter or prefix
    syntax survives (a folded word holds only letters and digits)."""
    return f'"{word}"'


def document_row(row: sqlite3.Row) -> Document:
    return Document(
        id=row["id"],
        title=row["title"],
        text=row["text"],
        source=row["source"],
        published_at=decode_optional_time(row["published_at"]),
        ingested_at=decode_time(row["ingested_at"]),
        metadata=decode_json(row["metadata"]),
        chunk_count=row["chunk_count"],
    )


def chunk_row(row: sqlite3.Row) -> Chunk:
    return Chunk(
        id=row["id"],
        document_id=row["document_id"],
        index=row["idx"],
        text=row["text"],
        start=row["start"],
        end=row["end"],
        token_count=row["token_count"],
    )


def entity_row(row: sqlite3.Row) -> Entity:
    return Entity(
        id=row["id"],
        key=row["key"],
        name=row["name"],
        type=row["type"],
        aliases=tuple(sorted(decode_json(row["aliases"]))),
        mention_count=row["mention_count"],
    )


def relation_row(row: sqlite3.Row) -> Relation:
    return Relation(
        id=row["id"],
        type=row["type"],
        source_id=row["source_id"],
        target_id=row["target_id"],
        confidence=row["confidence"],
    )


def evidence_row(row: sqlite3.Row) -> Evidence:
    return Evidence(
        relation_id=row["relation_id"],
        document_id=row["document_id"],
        chunk_id=row["chunk_id"],
        text=row["text"],
        confidence=row["confidence"],
    )
