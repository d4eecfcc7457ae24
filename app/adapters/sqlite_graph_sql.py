"""The SQL of the SQLite graph store, one constant per statement.

Keys travel as one JSON array parameter (``:keys``) read with ``json_each``, so a batch
of any size is one statement. Optional filters are ``(:x IS NULL OR ...)`` terms of a
fixed statement, never strings spliced from input.

Per-key pages are one statement each (see ``_paged``): a ``ranked`` subquery numbers
the rows of every key with ``ROW_NUMBER() OVER (PARTITION BY key ...)`` and counts them
with ``COUNT(*) OVER (PARTITION BY key)``; the outer query keeps the rows of the page
plus each key's first row, which carries the total even when the page is past the end.
Only rows inside the page are joined to their table, so no text is read for the rest.
"""

from __future__ import annotations

DOCUMENT_COLUMNS = (
    "t.id, t.title, t.text, t.source, t.published_at, t.ingested_at, t.metadata, t.chunk_count"
)
CHUNK_COLUMNS = 't.id, t.document_id, t.idx, t.text, t.start, t."end", t.token_count'
ENTITY_COLUMNS = "t.id, t.key, t.name, t.type, t.aliases, t.mention_count"
RELATION_COLUMNS = "t.id, t.type, t.source_id, t.target_id, t.confidence"

_KEYS = "(SELECT value FROM json_each(:keys))"


def _paged(ranked: str, table: str, columns: str) -> str:
    """A page per key from ``ranked`` (columns ``_k, _id, _rn, _total``).

    Every fragment is a constant of this module; nothing here comes from input.
    """
    return (
        f"WITH ranked AS ({ranked}) "  # noqa: S608 - constant fragments only
        f"SELECT r._k AS _k, r._rn AS _rn, r._total AS _total, {columns} "
        f"FROM ranked AS r LEFT JOIN {table} AS t "
        "ON t.id = r._id AND r._rn > :off AND r._rn <= :stop "
        "WHERE r._rn = 1 OR (r._rn > :off AND r._rn <= :stop) "
        "ORDER BY r._k, r._rn"
    )


# --- point reads ---------------------------------------------------------------------

GET_DOCUMENTS = f"SELECT {DOCUMENT_COLUMNS} FROM documents AS t WHERE t.id IN {_KEYS}"  # noqa: S608
GET_CHUNKS = f"SELECT {CHUNK_COLUMNS} FROM chunks AS t WHERE t.id IN {_KEYS}"  # noqa: S608
GET_ENTITIES = f"SELECT {ENTITY_COLUMNS} FROM entities AS t WHERE t.id IN {_KEYS}"  # noqa: S608
GET_RELATIONS = f"SELECT {RELATION_COLUMNS} FROM relations AS t WHERE t.id IN {_KEYS}"  # noqa: S608

# --- lists (one key, '') -------------------------------------------------------------

LIST_DOCUMENTS = _paged(
    """
    SELECT '' AS _k, id AS _id,
           ROW_NUMBER() OVER (ORDER BY ingested_at DESC, id) AS _rn,
           COUNT(*) OVER () AS _total
    FROM documents
    WHERE (:source IS NULL OR source = :source)
      AND (:title IS NULL OR id IN (
            SELECT document_id FROM document_titles WHERE instr(folded, :title) > 0))
      AND (:after IS NULL OR ingested_at > :after)
    """,
    "documents",
    DOCUMENT_COLUMNS,
)

LIST_ENTITIES = _paged(
    """
    SELECT '' AS _k, id AS _id,
           ROW_NUMBER() OVER (ORDER BY mention_count DESC, name, id) AS _rn,
           COUNT(*) OVER () AS _total
    FROM entities
    WHERE (:type IS NULL OR type = :type)
      AND (:name IS NULL OR instr(kg_fold(name), :name) > 0)
    """,
    "entities",
    ENTITY_COLUMNS,
)

LIST_RELATIONS = _paged(
    """
    SELECT '' AS _k, id AS _id,
           ROW_NUMBER() OVER (ORDER BY confidence DESC, id) AS _rn,
           COUNT(*) OVER () AS _total
    FROM relations
    WHERE (:type IS NULL OR type = :type)
      AND (:source IS NULL OR source_id = :source)
      AND (:target IS NULL OR target_id = :target)
    """,
    "relations",
    RELATION_COLUMNS,
)

# --- edges, a page per key -----------------------------------------------------------

CHUNKS_OF_DOCUMENTS = _paged(
    """
    SELECT document_id AS _k, id AS _id,
           ROW_NUMBER() OVER (PARTITION BY document_id ORDER BY idx, id) AS _rn,
           COUNT(*) OVER (PARTITION BY document_id) AS _total
    FROM chunks
    WHERE document_id IN (SELECT value FROM json_each(:keys))
    """,
    "chunks",
    CHUNK_COLUMNS,
)

ENTITIES_OF_DOCUMENTS = _paged(
    """
    SELECT p.document_id AS _k, e.id AS _id,
           ROW_NUMBER() OVER (
               PARTITION BY p.document_id ORDER BY e.mention_count DESC, e.name, e.id
           ) AS _rn,
           COUNT(*) OVER (PARTITION BY p.document_id) AS _total
    FROM (SELECT DISTINCT document_id, entity_id FROM mentions
          WHERE document_id IN (SELECT value FROM json_each(:keys))) AS p
    JOIN entities AS e ON e.id = p.entity_id
    """,
    "entities",
    ENTITY_COLUMNS,
)

DOCUMENTS_OF_ENTITIES = _paged(
    """
    SELECT p.entity_id AS _k, d.id AS _id,
           ROW_NUMBER() OVER (
               PARTITION BY p.entity_id ORDER BY d.ingested_at DESC, d.id
           ) AS _rn,
           COUNT(*) OVER (PARTITION BY p.entity_id) AS _total
    FROM (SELECT DISTINCT entity_id, document_id FROM mentions
          WHERE entity_id IN (SELECT value FROM json_each(:keys))) AS p
    JOIN documents AS d ON d.id = p.document_id
    """,
    "documents",
    DOCUMENT_COLUMNS,
)

# :outgoing and :incoming pick the direction; UNION (not UNION ALL) counts a self-loop
# once when both are on.
RELATIONS_OF_ENTITIES = _paged(
    """
    SELECT p.k AS _k, r.id AS _id,
           ROW_NUMBER() OVER (PARTITION BY p.k ORDER BY r.confidence DESC, r.id) AS _rn,
           COUNT(*) OVER (PARTITION BY p.k) AS _total
    FROM (SELECT source_id AS k, id FROM relations
          WHERE :outgoing AND source_id IN (SELECT value FROM json_each(:keys))
          UNION
          SELECT target_id AS k, id FROM relations
          WHERE :incoming AND target_id IN (SELECT value FROM json_each(:keys))) AS p
    JOIN relations AS r ON r.id = p.id
    """,
    "relations",
    RELATION_COLUMNS,
)

ENTITIES_OF_CHUNKS = f"""
    SELECT m.chunk_id AS _k, MIN(m.start) AS _first, MIN(m."end") AS _first_end,
           {ENTITY_COLUMNS}
    FROM mentions AS m JOIN entities AS t ON t.id = m.entity_id
    WHERE m.chunk_id IN {_KEYS}
    GROUP BY m.chunk_id, t.id
    ORDER BY m.chunk_id, _first, _first_end, t.id
"""  # noqa: S608

EVIDENCE_OF_RELATIONS = f"""
    SELECT relation_id, document_id, chunk_id, text, confidence
    FROM evidence
    WHERE relation_id IN {_KEYS}
    ORDER BY relation_id, confidence DESC, document_id, chunk_id, text
"""  # noqa: S608

# --- walks (graph_walks) --------------------------------------------------------------

# One hop: each entity outside :seen joined to :frontier by a relation (either
# direction), with its best such relation; the best :room of them. A self-loop's other
# end is its own end, which is in :seen, so it never leads anywhere. Links are ranked on
# ids and confidences only; the relations' rows are read for the chosen :room alone (a
# hub's frontier has thousands of links).
WALK_LINKS = f"""
    WITH links AS (
        SELECT r.target_id AS entity_id, r.source_id AS via, r.id AS rel,
               r.confidence AS confidence
        FROM relations AS r WHERE r.source_id IN (SELECT value FROM json_each(:frontier))
        UNION ALL
        SELECT r.source_id, r.target_id, r.id, r.confidence
        FROM relations AS r WHERE r.target_id IN (SELECT value FROM json_each(:frontier))
    ),
    ranked AS (
        SELECT l.entity_id, l.via, l.rel, l.confidence,
               ROW_NUMBER() OVER (
                   PARTITION BY l.entity_id ORDER BY l.confidence DESC, l.rel
               ) AS _rn
        FROM links AS l
        WHERE l.entity_id NOT IN (SELECT value FROM json_each(:seen))
    ),
    best AS (
        SELECT entity_id, via, rel, confidence FROM ranked
        WHERE _rn = 1
        ORDER BY confidence DESC, entity_id
        LIMIT :room
    )
    SELECT b.entity_id AS entity_id, b.via AS via, {RELATION_COLUMNS}
    FROM best AS b JOIN relations AS t ON t.id = b.rel
    ORDER BY b.confidence DESC, b.entity_id
"""  # noqa: S608

RELATIONS_AMONG = f"""
    SELECT {RELATION_COLUMNS} FROM relations AS t
    WHERE t.source_id IN {_KEYS} AND t.target_id IN {_KEYS}
    ORDER BY t.confidence DESC, t.id
"""  # noqa: S608

# --- search and counts ---------------------------------------------------------------

# The seqs a keyword search covers: a split search cuts them into ranges, and a search
# over more of them than its candidate budget scores only candidates. Two subqueries:
# SQLite answers a lone min() or max() with one seek in the index, but scans the whole
# table for both in one SELECT.
CHUNK_SEQ_RANGE = "SELECT (SELECT min(seq) FROM chunks) AS lo, (SELECT max(seq) FROM chunks) AS hi"

# bm25() is lower-is-better and negative; its negation is a positive score. Ties go to
# the chunk stored first (its seq, the FTS rowid). Without filters the best k are
# chosen inside the FTS table and only they are joined to their chunks: joining every
# match first cost a third of the query on common words.
# Both forms read the chunks whose seq is in [:lo, :hi] (all of them, or one part of a
# split search: FTS5 walks only that range of its index, and bm25's statistics stay the
# whole table's, so a part's scores are the same as the whole search's).
_KEYWORD_SEARCH = """
    SELECT c.id AS chunk_id, c.document_id AS document_id, best.score AS score,
           best.seq AS seq
    FROM (
        SELECT rowid AS seq, -bm25(chunks_fts) AS score
        FROM chunks_fts
        WHERE chunks_fts MATCH :match AND rowid BETWEEN :lo AND :hi {among}
        ORDER BY score DESC, seq
        LIMIT :k
    ) AS best
    JOIN chunks AS c ON c.seq = best.seq
    ORDER BY best.score DESC, best.seq
"""
KEYWORD_SEARCH = _KEYWORD_SEARCH.format(among="")

# The same, among the candidates (``keyword_candidates``): the chunks that :candidates
# matches. ``+rowid`` keeps the IN away from FTS5's index, which would run the MATCH
# once per candidate; the candidates are listed once, and bm25 runs only for the rows
# that pass both.
KEYWORD_SEARCH_AMONG = _KEYWORD_SEARCH.format(
    among="""
          AND +rowid IN (
            SELECT rowid FROM chunks_fts
            WHERE chunks_fts MATCH :candidates AND rowid BETWEEN :lo AND :hi
          )"""
)

# How many chunks hold each of :terms (a JSON array of quoted FTS5 strings): a count
# of its MATCH, which walks the index without scoring (about 45 ns a chunk).
KEYWORD_TERM_CHUNKS = """
    SELECT term.value AS term,
           (SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH term.value) AS chunks
    FROM json_each(:terms) AS term
"""

KEYWORD_SEARCH_FILTERED = """
    SELECT c.id AS chunk_id, c.document_id AS document_id, -bm25(chunks_fts) AS score,
           c.seq AS seq
    FROM chunks_fts JOIN chunks AS c ON c.seq = chunks_fts.rowid
    WHERE chunks_fts MATCH :match AND chunks_fts.rowid BETWEEN :lo AND :hi
      AND (:documents IS NULL OR c.document_id IN (SELECT value FROM json_each(:documents)))
      AND (:types IS NULL OR EXISTS (
            SELECT 1 FROM mentions AS m JOIN entities AS e ON e.id = m.entity_id
            WHERE m.chunk_id = c.id AND e.type IN (SELECT value FROM json_each(:types))))
    ORDER BY score DESC, c.seq
    LIMIT :k
"""

# Entities by the number of :terms (a JSON array of quoted FTS5 strings, one per
# distinct word) their name or aliases hold: one MATCH per term, joined, so each term
# counts once per entity.
SEARCH_ENTITIES = f"""
    WITH matched AS (
        SELECT entities_fts.rowid AS seq, COUNT(*) AS words
        FROM json_each(:terms) AS term
        JOIN entities_fts ON entities_fts MATCH term.value
        GROUP BY entities_fts.rowid
    )
    SELECT {ENTITY_COLUMNS}
    FROM matched AS m JOIN entities AS t ON t.seq = m.seq
    ORDER BY m.words DESC, t.mention_count DESC, t.id
    LIMIT :k
"""  # noqa: S608

GRAPH_VERSION = "SELECT version FROM graph_version"
# The last statement of every write, and of every delete that removed something.
BUMP_VERSION = "UPDATE graph_version SET version = version + 1"

STATS = """
    SELECT (SELECT COUNT(*) FROM documents) AS documents,
           (SELECT COUNT(*) FROM chunks) AS chunks,
           (SELECT COUNT(*) FROM entities) AS entities,
           (SELECT COUNT(*) FROM relations) AS relations
"""

# --- writes --------------------------------------------------------------------------

# A rewrite keeps the first ingestion time, so a replay does not reorder documents.
UPSERT_DOCUMENT = """
    INSERT INTO documents
        (id, title, text, source, published_at, ingested_at, metadata, chunk_count)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
        title = excluded.title, text = excluded.text, source = excluded.source,
        published_at = excluded.published_at, metadata = excluded.metadata,
        chunk_count = excluded.chunk_count
"""
UPSERT_DOCUMENT_TITLE = """
    INSERT INTO document_titles (document_id, folded) VALUES (?, kg_fold(?))
    ON CONFLICT (document_id) DO UPDATE SET folded = excluded.folded
"""
INSERT_CHUNK = """
    INSERT INTO chunks (id, document_id, idx, text, start, "end", token_count)
    VALUES (?, ?, ?, ?, ?, ?, ?)
"""
# A merge that does not depend on the order documents arrive in (GraphStore.write_document):
# an entity keeps its longest name (among equals the smallest, in code point order). Counts,
# aliases and relation confidence are refreshed afterwards.
INSERT_ENTITY = """
    INSERT INTO entities (id, key, name, type) VALUES (?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET name = excluded.name
    WHERE length(excluded.name) > length(entities.name)
       OR (length(excluded.name) = length(entities.name) AND excluded.name < entities.name)
"""
INSERT_MENTION = """
    INSERT INTO mentions (entity_id, chunk_id, start, "end", document_id, text)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT DO NOTHING
"""
INSERT_RELATION = """
    INSERT INTO relations (id, type, source_id, target_id, confidence) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING
"""
INSERT_EVIDENCE = """
    INSERT INTO evidence (relation_id, chunk_id, text, document_id, confidence)
    VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (relation_id, chunk_id, text) DO UPDATE SET
        confidence = MAX(confidence, excluded.confidence)
"""

DOCUMENT_EXISTS = "SELECT 1 FROM documents WHERE id = ?"

# Detaching a document: what it supported, then its rows (not the document row).
ENTITIES_OF_DOCUMENT = "SELECT DISTINCT entity_id FROM mentions WHERE document_id = ?"
RELATIONS_OF_DOCUMENT = "SELECT DISTINCT relation_id FROM evidence WHERE document_id = ?"
CHUNK_IDS_OF_DOCUMENT = "SELECT id FROM chunks WHERE document_id = ? ORDER BY idx"
DELETE_EVIDENCE_OF_DOCUMENT = "DELETE FROM evidence WHERE document_id = ?"
DELETE_MENTIONS_OF_DOCUMENT = "DELETE FROM mentions WHERE document_id = ?"
DELETE_CHUNKS_OF_DOCUMENT = "DELETE FROM chunks WHERE document_id = ?"
DELETE_DOCUMENT = "DELETE FROM documents WHERE id = ?"

# Orphans: entities without mentions; relations without evidence or without an end.
# Deleting a relation cascades to any evidence it still has.
ORPHAN_ENTITIES = f"""
    SELECT id FROM entities
    WHERE id IN {_KEYS}
      AND NOT EXISTS (SELECT 1 FROM mentions AS m WHERE m.entity_id = entities.id)
"""  # noqa: S608
DELETE_ORPHAN_RELATIONS = f"""
    DELETE FROM relations
    WHERE (id IN {_KEYS}
           AND NOT EXISTS (SELECT 1 FROM evidence AS v WHERE v.relation_id = relations.id))
       OR source_id IN (SELECT value FROM json_each(:orphans))
       OR target_id IN (SELECT value FROM json_each(:orphans))
    RETURNING id
"""  # noqa: S608
DELETE_ENTITIES = f"DELETE FROM entities WHERE id IN {_KEYS}"  # noqa: S608

# Derived fields, recomputed for the touched rows inside the writing transaction.
REFRESH_ENTITIES = f"""
    UPDATE entities SET
        mention_count = (SELECT COUNT(*) FROM mentions AS m WHERE m.entity_id = entities.id),
        aliases = (SELECT json_group_array(text) FROM (
                       SELECT DISTINCT m.text AS text FROM mentions AS m
                       WHERE m.entity_id = entities.id AND m.text <> entities.name
                       ORDER BY text))
    WHERE id IN {_KEYS}
"""  # noqa: S608
REFRESH_RELATIONS = f"""
    UPDATE relations SET
        confidence = COALESCE(
            (SELECT MAX(v.confidence) FROM evidence AS v WHERE v.relation_id = relations.id),
            confidence)
    WHERE id IN {_KEYS}
"""  # noqa: S608
