"""The graph store's SQLite schema, as migration steps applied in order.

Never edit a step that has shipped: append a new one. Step ``n`` takes a file from
``PRAGMA user_version = n`` to ``n + 1`` (see ``sqlite_support.migrate``).

Shape:
- ``chunks`` and ``entities`` have an integer ``seq`` (their rowid) beside their text
  id, because the FTS5 tables (``chunks_fts``, ``entities_fts``) index by rowid;
  triggers keep both FTS tables in step inside the writing transaction.
- ``entities_fts`` (since step 2) is contentless and indexes an entity's name and its
  aliases joined by spaces, not the JSON text of ``aliases``: JSON escapes glue letters
  to words (an alias holding a line break is stored as ``\\n``, which the tokenizer
  would read as the letter ``n`` starting the next word). The same expression of
  ``aliases`` feeds every insert and delete of the index, so they always agree.
- ``graph_version`` holds one counter, raised by every write and every delete that
  removed something, in the same transaction: what cached reads are keyed by.
- ``entities.mention_count`` and ``entities.aliases`` (a JSON array) are derived from
  ``mentions`` and recomputed in the same transaction as every write or delete that
  touches the entity, so ``list_entities`` can sort by count on an index.
- ``relations.confidence`` is likewise the best confidence of its ``evidence``.
- A document's text is its last column: SQLite spills long values to overflow pages,
  and a column stored after one would drag them in on every list and sort.
- ``document_titles`` (since step 3) holds each document's title case-folded
  (``kg_fold``), written beside the document and deleted with it (foreign key), so a
  title filter scans short rows with the built-in ``instr`` instead of calling a Python
  function on every document.
- Times are ISO-8601 UTC text of fixed width, metadata is JSON text.
"""

from __future__ import annotations

from app.adapters.sqlite_support import Migration

GRAPH_APPLICATION_ID = 0x4B474753  # "KGGS"

_V1: Migration = (
    """
    CREATE TABLE documents (
        id           TEXT PRIMARY KEY,
        title        TEXT NOT NULL,
        source       TEXT,
        published_at TEXT,
        ingested_at  TEXT NOT NULL,
        metadata     TEXT,
        chunk_count  INTEGER NOT NULL,
        text         TEXT NOT NULL
    )
    """,
    "CREATE INDEX documents_by_ingested ON documents (ingested_at DESC, id)",
    "CREATE INDEX documents_by_source ON documents (source)",
    """
    CREATE TABLE chunks (
        seq         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        text        TEXT NOT NULL,
        start       INTEGER NOT NULL,
        "end"       INTEGER NOT NULL,
        token_count INTEGER NOT NULL
    )
    """,
    "CREATE INDEX chunks_by_document ON chunks (document_id, idx)",
    """
    CREATE TABLE entities (
        seq           INTEGER PRIMARY KEY,
        id            TEXT NOT NULL UNIQUE,
        key           TEXT NOT NULL,
        name          TEXT NOT NULL,
        type          TEXT NOT NULL,
        aliases       TEXT NOT NULL DEFAULT '[]',
        mention_count INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX entities_by_rank ON entities (mention_count DESC, name, id)",
    "CREATE INDEX entities_by_type ON entities (type)",
    """
    CREATE TABLE mentions (
        entity_id   TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
        chunk_id    TEXT NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
        start       INTEGER NOT NULL,
        "end"       INTEGER NOT NULL,
        document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
        text        TEXT NOT NULL,
        PRIMARY KEY (entity_id, chunk_id, start, "end")
    ) WITHOUT ROWID
    """,
    "CREATE INDEX mentions_by_chunk ON mentions (chunk_id, start)",
    "CREATE INDEX mentions_by_document ON mentions (document_id, entity_id)",
    """
    CREATE TABLE relations (
        id         TEXT PRIMARY KEY,
        type       TEXT NOT NULL,
        source_id  TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
        target_id  TEXT NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
        confidence REAL NOT NULL
    )
    """,
    "CREATE INDEX relations_by_rank ON relations (confidence DESC, id)",
    "CREATE INDEX relations_by_source ON relations (source_id)",
    "CREATE INDEX relations_by_target ON relations (target_id)",
    "CREATE INDEX relations_by_type ON relations (type)",
    """
    CREATE TABLE evidence (
        relation_id TEXT NOT NULL REFERENCES relations (id) ON DELETE CASCADE,
        chunk_id    TEXT NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
        text        TEXT NOT NULL,
        document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
        confidence  REAL NOT NULL,
        PRIMARY KEY (relation_id, chunk_id, text)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX evidence_by_document ON evidence (document_id)",
    "CREATE INDEX evidence_by_chunk ON evidence (chunk_id)",
    # Full text over chunk text; diacritics folded so "Zurich" finds "Zürich".
    """
    CREATE VIRTUAL TABLE chunks_fts USING fts5 (
        text, content = 'chunks', content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts (rowid, text) VALUES (new.seq, new.text);
    END
    """,
    """
    CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    END
    """,
    """
    CREATE TRIGGER chunks_fts_update AFTER UPDATE OF text ON chunks BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.seq, old.text);
        INSERT INTO chunks_fts (rowid, text) VALUES (new.seq, new.text);
    END
    """,
    # Full text over entity names and aliases, for name search.
    """
    CREATE VIRTUAL TABLE entities_fts USING fts5 (
        name, aliases, content = 'entities', content_rowid = 'seq',
        tokenize = 'unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER entities_fts_insert AFTER INSERT ON entities BEGIN
        INSERT INTO entities_fts (rowid, name, aliases) VALUES (new.seq, new.name, new.aliases);
    END
    """,
    """
    CREATE TRIGGER entities_fts_delete AFTER DELETE ON entities BEGIN
        INSERT INTO entities_fts (entities_fts, rowid, name, aliases)
        VALUES ('delete', old.seq, old.name, old.aliases);
    END
    """,
    """
    CREATE TRIGGER entities_fts_update AFTER UPDATE OF name, aliases ON entities BEGIN
        INSERT INTO entities_fts (entities_fts, rowid, name, aliases)
        VALUES ('delete', old.seq, old.name, old.aliases);
        INSERT INTO entities_fts (rowid, name, aliases) VALUES (new.seq, new.name, new.aliases);
    END
    """,
)

# entities_fts indexes the aliases as text: ``(SELECT group_concat(value, ' ') FROM
# json_each(<row>.aliases))``, the same expression in every statement below.
_V2: Migration = (
    """
    CREATE TABLE graph_version (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )
    """,
    "INSERT INTO graph_version (id, version) VALUES (1, 0)",
    "DROP TRIGGER entities_fts_insert",
    "DROP TRIGGER entities_fts_delete",
    "DROP TRIGGER entities_fts_update",
    "DROP TABLE entities_fts",
    """
    CREATE VIRTUAL TABLE entities_fts USING fts5 (
        name, aliases, content = '',
        tokenize = 'unicode61 remove_diacritics 2'
    )
    """,
    """
    INSERT INTO entities_fts (rowid, name, aliases)
    SELECT seq, name, (SELECT group_concat(value, ' ') FROM json_each(entities.aliases))
    FROM entities
    """,
    """
    CREATE TRIGGER entities_fts_insert AFTER INSERT ON entities BEGIN
        INSERT INTO entities_fts (rowid, name, aliases)
        VALUES (new.seq, new.name,
                (SELECT group_concat(value, ' ') FROM json_each(new.aliases)));
    END
    """,
    """
    CREATE TRIGGER entities_fts_delete AFTER DELETE ON entities BEGIN
        INSERT INTO entities_fts (entities_fts, rowid, name, aliases)
        VALUES ('delete', old.seq, old.name,
                (SELECT group_concat(value, ' ') FROM json_each(old.aliases)));
    END
    """,
    """
    CREATE TRIGGER entities_fts_update AFTER UPDATE OF name, aliases ON entities BEGIN
        INSERT INTO entities_fts (entities_fts, rowid, name, aliases)
        VALUES ('delete', old.seq, old.name,
                (SELECT group_concat(value, ' ') FROM json_each(old.aliases)));
        INSERT INTO entities_fts (rowid, name, aliases)
        VALUES (new.seq, new.name,
                (SELECT group_concat(value, ' ') FROM json_each(new.aliases)));
    END
    """,
)

_V3: Migration = (
    """
    CREATE TABLE document_titles (
        document_id TEXT PRIMARY KEY REFERENCES documents (id) ON DELETE CASCADE,
        folded      TEXT NOT NULL
    )
    """,
    "INSERT INTO document_titles (document_id, folded) SELECT id, kg_fold(title) FROM documents",
)

GRAPH_MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3)
