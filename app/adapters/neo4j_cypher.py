"""The Cypher of the Neo4j graph store, one constant per statement.

The model:

    (:Document)-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS {start, end, text}]->(:Entity)
    (:Relation)-[:SOURCE]->(:Entity)    (:Relation)-[:TARGET]->(:Entity)
    (:Relation)-[:EVIDENCED_BY {text, confidence}]->(:Chunk)

Relations are nodes, not relationships, because a relation has evidence and evidence
points at chunks: a relationship cannot have relationships of its own. So every row
the SQLite store keeps in ``mentions`` and ``evidence`` hangs off a chunk, and deleting
a document's chunks (``DETACH DELETE``) removes its mentions and evidence with them.
What is left to collect is then a degree check on the few entities and relations the
document touched, never a scan. Every per-key page starts from its key's node and walks
its relationships (index-free adjacency), so its cost follows that node's degree, not
the size of the graph.

Every value travels as a parameter; keys of a batch are one list parameter read with
``UNWIND``. Optional filters of the lists are ``WHERE`` terms picked from the constants
below (never text from input), so the planner sees plain predicates it can serve from
the range indexes. ``CALL (x) { ... }`` is the 5.23+ form of importing subqueries.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

# --- schema ----------------------------------------------------------------------------

# Chunks are searched by ``c.words``: their words as ``search_words`` folds them (as
# SQLite's FTS tokenizer would), so a whitespace analyser indexes exactly those words.
CHUNK_TEXT_INDEX = "kg_chunk_words"
CHUNK_ANALYZER = "whitespace"
# Entities are searched by ``e.words``: the folded words of their name and aliases,
# set by every write that changes either (see FINISH), indexed the same way.
ENTITY_WORDS_INDEX = "kg_entity_words"
# Indexes of earlier versions, dropped at start-up (kg_chunk_text: Lucene's own words;
# kg_entity_name: names and aliases through Lucene's standard-folding analyser).
RETIRED_INDEXES = ("kg_chunk_text", "kg_entity_name")
# The one node that holds the graph's version (``GraphStore.version``).
META_ID = "graph"


def _unique(name: str, label: str) -> tuple[str, str]:
    return name, f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.id IS UNIQUE"


def _range(name: str, label: str, prop: str) -> tuple[str, str]:
    return name, f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"


def _fulltext(name: str, label: str, props: str, analyzer: str) -> tuple[str, str]:
    return name, (
        f"CREATE FULLTEXT INDEX {name} IF NOT EXISTS FOR (n:{label}) ON EACH [{props}] "
        f"OPTIONS {{indexConfig: {{`fulltext.analyzer`: '{analyzer}'}}}}"
    )


# (name, statement): unique ids (each backed by a range index of the same name), range
# indexes on what the lists filter and sort by, and the two full-text indexes.
SCHEMA: tuple[tuple[str, str], ...] = (
    _unique("kg_document_id", "Document"),
    _unique("kg_chunk_id", "Chunk"),
    _unique("kg_entity_id", "Entity"),
    _unique("kg_relation_id", "Relation"),
    _unique("kg_meta_id", "KGMeta"),  # so concurrent first writes MERGE one node
    _range("kg_document_ingested_at", "Document", "ingested_at"),
    _range("kg_document_source", "Document", "source"),
    _range("kg_entity_type", "Entity", "type"),
    _range("kg_entity_mention_count", "Entity", "mention_count"),
    _range("kg_relation_type", "Relation", "type"),
    _range("kg_relation_confidence", "Relation", "confidence"),
    _range("kg_relation_source_id", "Relation", "source_id"),
    _range("kg_relation_target_id", "Relation", "target_id"),
    _fulltext(CHUNK_TEXT_INDEX, "Chunk", "n.words", CHUNK_ANALYZER),
    _fulltext(ENTITY_WORDS_INDEX, "Entity", "n.words", CHUNK_ANALYZER),
)
DROP_INDEX = "DROP INDEX {} IF EXISTS"  # formatted with RETIRED_INDEXES names only
# Chunks written before ``words`` existed, and the filling in of their words.
CHUNKS_WITHOUT_WORDS = (
    "MATCH (c:Chunk) WHERE c.words IS NULL RETURN c.id AS id, c.text AS text LIMIT $limit"
)
SET_CHUNK_WORDS = "UNWIND $rows AS row MATCH (c:Chunk {id: row.id}) SET c.words = row.words"
# Likewise entities written before ``words`` existed.
ENTITIES_WITHOUT_WORDS = (
    "MATCH (e:Entity) WHERE e.words IS NULL "
    "RETURN e.id AS id, e.name AS name, e.aliases AS aliases LIMIT $limit"
)
SET_ENTITY_WORDS = "UNWIND $rows AS row MATCH (e:Entity {id: row.id}) SET e.words = row.words"

AWAIT_INDEXES = "CALL db.awaitIndexes($seconds)"
INDEX_STATES = (
    "SHOW INDEXES YIELD name, state, failureMessage WHERE name IN $names "
    "RETURN name, state, failureMessage"
)
SERVER_VERSION = (
    "CALL dbms.components() YIELD name, versions WHERE name = 'Neo4j Kernel' "
    "RETURN versions[0] AS version"
)

# --- projections -----------------------------------------------------------------------

DOCUMENT_MAP = "{.id, .title, .text, .source, .published_at, .ingested_at, .metadata, .chunk_count}"
CHUNK_MAP = "{.id, .document_id, .index, .text, .start, .end, .token_count}"
ENTITY_MAP = "{.id, .key, .name, .type, .aliases, .mention_count}"
RELATION_MAP = "{.id, .type, .source_id, .target_id, .confidence}"

# --- point reads -----------------------------------------------------------------------

GET_DOCUMENTS = f"UNWIND $ids AS id MATCH (n:Document {{id: id}}) RETURN n {DOCUMENT_MAP} AS item"
GET_CHUNKS = f"UNWIND $ids AS id MATCH (n:Chunk {{id: id}}) RETURN n {CHUNK_MAP} AS item"
GET_ENTITIES = f"UNWIND $ids AS id MATCH (n:Entity {{id: id}}) RETURN n {ENTITY_MAP} AS item"
GET_RELATIONS = f"UNWIND $ids AS id MATCH (n:Relation {{id: id}}) RETURN n {RELATION_MAP} AS item"

# --- lists: one page and its total -------------------------------------------------------

DOCUMENT_SOURCE = "n.source = $source"
DOCUMENT_TITLE = "n.title_folded CONTAINS $title"
DOCUMENT_AFTER = "n.ingested_at > $after"
ENTITY_TYPE = "n.type = $type"
ENTITY_NAME = "n.name_folded CONTAINS $name"
RELATION_TYPE = "n.type = $type"
RELATION_SOURCE = "n.source_id = $source"
RELATION_TARGET = "n.target_id = $target"

_DOCUMENT_ORDER = "n.ingested_at DESC, n.id"
_ENTITY_ORDER = "n.mention_count DESC, n.name, n.id"
_RELATION_ORDER = "n.confidence DESC, n.id"
# Always true (every node has the property), but it lets the planner walk the range
# index of the first sort key in order and stop after the page (NodeIndexScan and
# PartialTop) instead of sorting every node of the label.
_DOCUMENT_ORDERED = "n.ingested_at IS NOT NULL"
_ENTITY_ORDERED = "n.mention_count IS NOT NULL"
_RELATION_ORDERED = "n.confidence IS NOT NULL"


def _listing(label: str, terms: Sequence[str], ordered: str, order: str, projection: str) -> str:
    """A page of ``label`` nodes and the total matching ``terms`` (constants of this
    module, AND-ed), in one statement. Without terms the total comes from the count
    store."""
    where = " AND ".join(terms) or "true"
    return (
        f"CALL () {{ MATCH (n:{label}) WHERE {where} RETURN count(n) AS total }} "
        f"CALL () {{ MATCH (n:{label}) WHERE {where} AND {ordered} "
        f"WITH n ORDER BY {order} SKIP $offset LIMIT $limit "
        f"RETURN collect(n {projection}) AS items }} "
        "RETURN items, total"
    )


@cache
def list_documents(terms: tuple[str, ...]) -> str:
    return _listing("Document", terms, _DOCUMENT_ORDERED, _DOCUMENT_ORDER, DOCUMENT_MAP)


@cache
def list_entities(terms: tuple[str, ...]) -> str:
    return _listing("Entity", terms, _ENTITY_ORDERED, _ENTITY_ORDER, ENTITY_MAP)


@cache
def list_relations(terms: tuple[str, ...]) -> str:
    return _listing("Relation", terms, _RELATION_ORDERED, _RELATION_ORDER, RELATION_MAP)


# --- edges: a page per key, all keys in one statement -------------------------------------


def _per_key(pattern: str, order: str, projection: str) -> str:
    """For every ``key``: the page of distinct ``n`` reached by ``pattern`` and their
    count. Both subqueries aggregate, so a key with nothing still yields its row."""
    return (
        "UNWIND $keys AS key "
        f"CALL (key) {{ MATCH {pattern} WITH DISTINCT n "
        f"ORDER BY {order} SKIP $offset LIMIT $limit "
        f"RETURN collect(n {projection}) AS items }} "
        f"CALL (key) {{ MATCH {pattern} RETURN count(DISTINCT n) AS total }} "
        "RETURN key, items, total"
    )


CHUNKS_OF_DOCUMENTS = _per_key(
    "(:Document {id: key})-[:HAS_CHUNK]->(n:Chunk)", "n.index, n.id", CHUNK_MAP
)
ENTITIES_OF_DOCUMENTS = _per_key(
    "(:Document {id: key})-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS]->(n:Entity)",
    _ENTITY_ORDER,
    ENTITY_MAP,
)
DOCUMENTS_OF_ENTITIES = _per_key(
    "(:Entity {id: key})<-[:MENTIONS]-(:Chunk)<-[:HAS_CHUNK]-(n:Document)",
    _DOCUMENT_ORDER,
    DOCUMENT_MAP,
)
# $outgoing and $incoming pick the direction; DISTINCT counts a self-loop once.
RELATIONS_OF_ENTITIES = _per_key(
    "(:Entity {id: key})<-[link:SOURCE|TARGET]-(n:Relation) "
    "WHERE ($outgoing AND type(link) = 'SOURCE') OR ($incoming AND type(link) = 'TARGET')",
    _RELATION_ORDER,
    RELATION_MAP,
)

ENTITIES_OF_CHUNKS = f"""
    UNWIND $keys AS key
    MATCH (:Chunk {{id: key}})-[m:MENTIONS]->(n:Entity)
    WITH key, n, min(m.start) AS first, min(m.end) AS first_end
    ORDER BY key, first, first_end, n.id
    RETURN key, n {ENTITY_MAP} AS item
"""

EVIDENCE_OF_RELATIONS = """
    UNWIND $keys AS key
    MATCH (:Relation {id: key})-[v:EVIDENCED_BY]->(c:Chunk)
    RETURN key, c.document_id AS document_id, c.id AS chunk_id, v.text AS text,
           v.confidence AS confidence
    ORDER BY key, confidence DESC, document_id, chunk_id, text
"""

# --- walks (graph_walks) -----------------------------------------------------------------

# One hop: each entity outside $seen joined to $frontier by a relation (either
# direction), with its best such relation; the best $room of them. Rows are sorted
# before ``collect``, so ``head`` is the best. A self-loop's other end is its own end,
# which is in $seen, so it never leads anywhere.
WALK_LINKS = f"""
    UNWIND $frontier AS via
    MATCH (:Entity {{id: via}})<-[:SOURCE|TARGET]-(r:Relation)-[:SOURCE|TARGET]->(n:Entity)
    WHERE NOT n.id IN $seen
    WITH n.id AS entity_id, via, r
    ORDER BY r.confidence DESC, r.id
    WITH entity_id, head(collect({{via: via, item: r {RELATION_MAP}}})) AS best
    RETURN entity_id, best.via AS via, best.item AS item
    ORDER BY best.item.confidence DESC, entity_id
    LIMIT $room
"""

RELATIONS_AMONG = f"""
    UNWIND $ids AS id
    MATCH (:Entity {{id: id}})<-[:SOURCE]-(r:Relation)-[:TARGET]->(t:Entity)
    WHERE t.id IN $ids
    RETURN r {RELATION_MAP} AS item
    ORDER BY r.confidence DESC, r.id
"""

# --- search and counts -----------------------------------------------------------------

# The procedure streams every hit; the filters apply before ORDER BY ... LIMIT $k.
KEYWORD_SEARCH = f"""
    CALL db.index.fulltext.queryNodes('{CHUNK_TEXT_INDEX}', $query) YIELD node, score
    WHERE ($documents IS NULL OR node.document_id IN $documents)
      AND ($types IS NULL OR EXISTS {{
            MATCH (node)-[:MENTIONS]->(e:Entity) WHERE e.type IN $types }})
    RETURN node.id AS chunk_id, node.document_id AS document_id, score
    ORDER BY score DESC, chunk_id
    LIMIT $k
"""

# One full-text query per word (each a quoted term), so an entity's count of rows is
# the number of distinct words its name or aliases hold.
SEARCH_ENTITIES = f"""
    UNWIND $words AS word
    CALL db.index.fulltext.queryNodes('{ENTITY_WORDS_INDEX}', word) YIELD node
    WITH node, count(*) AS matched
    ORDER BY matched DESC, node.mention_count DESC, node.id
    LIMIT $k
    RETURN node {ENTITY_MAP} AS item
"""

GRAPH_VERSION = f"""
    OPTIONAL MATCH (m:KGMeta {{id: '{META_ID}'}})
    RETURN coalesce(m.version, 0) AS version
"""

STATS = """
    RETURN COUNT { (:Document) } AS documents, COUNT { (:Chunk) } AS chunks,
           COUNT { (:Entity) } AS entities, COUNT { (:Relation) } AS relations
"""

# --- writes: the statements of one document's transaction, in order --------------------
#
# Locks. Writing a property takes the node's write lock until commit, so writers of one
# document queue on its node, and writers sharing an entity or relation queue on it
# before they read it. A caveat shapes the statements: a transaction that waited for a
# lock held by one that then deleted the node carries on, silently, with a deleted node
# (its SET does nothing, its properties read as null). So every statement that locks
# nodes it must keep then checks, by id, that they still exist; the caller runs it again
# until they do (a MERGE then creates what was deleted), or gives up, retryably.

UPSERT_DOCUMENT = """
    MERGE (d:Document {id: $id})
    ON CREATE SET d.ingested_at = $ingested_at
    SET d.title = $title, d.title_folded = $title_folded, d.text = $text,
        d.source = $source, d.published_at = $published_at, d.metadata = $metadata,
        d.chunk_count = $chunk_count
    RETURN EXISTS { MATCH (:Document {id: $id}) } AS present
"""
LOCK_DOCUMENT = """
    MATCH (d:Document {id: $id})
    SET d._lock = true
    REMOVE d._lock
    RETURN EXISTS { MATCH (:Document {id: $id}) } AS present
"""

# What the document holds now: its chunks and what their mentions and evidence support.
FOOTPRINT = """
    MATCH (d:Document {id: $id})
    RETURN
      COLLECT { MATCH (d)-[:HAS_CHUNK]->(c:Chunk) RETURN c.id ORDER BY c.index } AS chunks,
      COLLECT { MATCH (d)-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS]->(e:Entity)
                RETURN DISTINCT e.id } AS entities,
      COLLECT { MATCH (d)-[:HAS_CHUNK]->(:Chunk)<-[:EVIDENCED_BY]-(r:Relation)
                RETURN DISTINCT r.id } AS relations
"""

# Locks the entities and relations whose derived fields this transaction recomputes
# (those that exist: a concurrent delete of one finishes first), merges the bundle's
# (an entity's name, key and type are the first writer's), locks the bundle's again
# (some may have been created by others meanwhile) and returns those of the bundle's
# that are gone. Ids are sorted, so writers take the locks they share in one order.
MERGE_AND_LOCK = """
    CALL () {
      UNWIND $lock_entities AS id
      MATCH (e:Entity {id: id})
      SET e._lock = true
      REMOVE e._lock
    }
    CALL () {
      UNWIND $lock_relations AS id
      MATCH (r:Relation {id: id})
      SET r._lock = true
      REMOVE r._lock
    }
    CALL () {
      UNWIND $entities AS row
      MERGE (e:Entity {id: row.id})
      ON CREATE SET e.key = row.key, e.name = row.name, e.name_folded = row.name_folded,
                    e.type = row.type, e.aliases = [], e.mention_count = 0
      SET e._lock = true
      REMOVE e._lock
      WITH e, row  // the longest name, among equals the smallest: order-independent
      WHERE size(row.name) > size(e.name) OR (size(row.name) = size(e.name) AND row.name < e.name)
      SET e.name = row.name, e.name_folded = row.name_folded
    }
    CALL () {
      UNWIND $relations AS row
      MATCH (s:Entity {id: row.source_id}), (t:Entity {id: row.target_id})
      MERGE (r:Relation {id: row.id})
      ON CREATE SET r.type = row.type, r.source_id = row.source_id,
                    r.target_id = row.target_id, r.confidence = row.confidence
      SET r._lock = true
      REMOVE r._lock
      MERGE (r)-[:SOURCE]->(s)
      MERGE (r)-[:TARGET]->(t)
    }
    RETURN
      [row IN $entities WHERE NOT EXISTS { MATCH (:Entity {id: row.id}) } | row.id]
        AS missing_entities,
      [row IN $relations WHERE NOT EXISTS { MATCH (:Relation {id: row.id}) } | row.id]
        AS missing_relations
"""

# Replaces the document's chunks, mentions and evidence with the bundle's. Chunks the
# bundle keeps are updated in place (unchanged values write nothing, so a replay leaves
# the full-text index, and with it every score, as it was); new ones are created, which
# fails on the unique constraint if another document owns the id. Returns how many
# mention and evidence rows found both their ends, which must be all of them.
WRITE_CONTENT = """
    MATCH (d:Document {id: $id})
    CALL (d) {
      MATCH (d)-[:HAS_CHUNK]->(c:Chunk)
      WHERE NOT (c.id IN $keep)
      DETACH DELETE c
    }
    CALL (d) {
      MATCH (d)-[:HAS_CHUNK]->(:Chunk)-[m:MENTIONS]->()
      DELETE m
    }
    CALL (d) {
      MATCH (d)-[:HAS_CHUNK]->(:Chunk)<-[v:EVIDENCED_BY]-()
      DELETE v
    }
    CALL (d) {
      UNWIND $updated AS row
      MATCH (d)-[:HAS_CHUNK]->(c:Chunk {id: row.id})
      SET c.index = row.index, c.text = row.text, c.start = row.start, c.end = row.end,
          c.token_count = row.token_count, c.words = row.words
    }
    CALL (d) {
      UNWIND $created AS row
      CREATE (d)-[:HAS_CHUNK]->(c:Chunk {id: row.id, document_id: d.id, index: row.index,
          text: row.text, start: row.start, end: row.end, token_count: row.token_count,
          words: row.words})
    }
    CALL () {
      UNWIND $mentions AS row
      MATCH (c:Chunk {id: row.chunk_id}), (e:Entity {id: row.entity_id})
      MERGE (c)-[m:MENTIONS {start: row.start, end: row.end}]->(e)
      ON CREATE SET m.text = row.text
      RETURN count(*) AS mentions
    }
    CALL () {
      UNWIND $evidence AS row
      MATCH (r:Relation {id: row.relation_id}), (c:Chunk {id: row.chunk_id})
      MERGE (r)-[v:EVIDENCED_BY {text: row.text}]->(c)
      ON CREATE SET v.confidence = row.confidence
      ON MATCH SET v.confidence =
          CASE WHEN row.confidence > v.confidence THEN row.confidence ELSE v.confidence END
      RETURN count(*) AS evidence
    }
    RETURN mentions, evidence
"""

DELETE_CONTENT = """
    MATCH (d:Document {id: $id})
    CALL (d) {
      MATCH (d)-[:HAS_CHUNK]->(c:Chunk)
      DETACH DELETE c
    }
    DETACH DELETE d
"""

# Among the given ones: entities left without mentions, and relations left without
# evidence or with an end among those entities. Deletes both; returns their ids.
COLLECT_ORPHANS = """
    CALL () {
      UNWIND $entities AS id
      MATCH (e:Entity {id: id})
      WHERE NOT EXISTS { (e)<-[:MENTIONS]-() }
      RETURN collect(e) AS orphans
    }
    CALL (orphans) {
      CALL (orphans) {
        UNWIND $relations AS id
        MATCH (r:Relation {id: id})
        WHERE NOT EXISTS { (r)-[:EVIDENCED_BY]->() }
        RETURN r
        UNION
        UNWIND orphans AS e
        MATCH (e)<-[:SOURCE|TARGET]-(r:Relation)
        RETURN r
      }
      RETURN collect(DISTINCT r) AS dead
    }
    WITH orphans, dead, [e IN orphans | e.id] AS entity_ids, [r IN dead | r.id] AS relation_ids
    FOREACH (r IN dead | DETACH DELETE r)
    FOREACH (e IN orphans | DETACH DELETE e)
    RETURN entity_ids, relation_ids
"""

# Derived fields of the touched survivors, recomputed from what is stored now; returns
# the entities' names and aliases, whose words FINISH stores.
REFRESH = """
    CALL () {
      UNWIND $entities AS id
      MATCH (e:Entity {id: id})
      SET e.mention_count = COUNT { (e)<-[:MENTIONS]-() },
          e.aliases = COLLECT { MATCH (e)<-[m:MENTIONS]-() WHERE m.text <> e.name
                                RETURN DISTINCT m.text AS text ORDER BY text }
      RETURN collect({id: e.id, name: e.name, aliases: e.aliases}) AS named
    }
    CALL () {
      UNWIND $relations AS id
      MATCH (r:Relation {id: id})
      CALL (r) {
        OPTIONAL MATCH (r)-[v:EVIDENCED_BY]->()
        RETURN max(v.confidence) AS best
      }
      SET r.confidence = coalesce(best, r.confidence)
    }
    RETURN named
"""

# The last statement of every write, and of every delete that removed something: the
# search words of the refreshed entities (already locked by this transaction), then
# the graph version. The version node's lock is taken last, so it is held only until
# commit and every writer in every process queues on it for that moment alone. The
# increment reads the property it writes, so Cypher locks the node before reading it:
# no two commits see the same version.
FINISH = f"""
    CALL () {{
      UNWIND $words AS row
      MATCH (e:Entity {{id: row.id}})
      SET e.words = row.words
    }}
    MERGE (m:KGMeta {{id: '{META_ID}'}})
    ON CREATE SET m.version = 0
    SET m.version = m.version + 1
"""
