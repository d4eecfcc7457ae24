"""What only the Neo4j graph store has: its schema, Cypher that no input can change,
one statement per batch, locks that keep derived fields exact under concurrent writers,
times as DATETIME values, and driver errors translated into ours.

Runs against the server named by ``KG_TEST_NEO4J_URL`` (see ``conftest``); every test
starts from an empty graph. The contract shared with SQLite is in ``test_graph_store``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import neo4j
import neo4j.exceptions
import pytest

from app.adapters import neo4j_cypher as cy
from app.adapters.neo4j_connection import Neo4jConnection
from app.adapters.neo4j_graph_store import Neo4jGraphStore
from app.adapters.neo4j_graph_writes import entity_words
from app.adapters.neo4j_support import lucene_escape, lucene_query, parse_target
from app.adapters.neo4j_vector_store import Neo4jVectorStore
from app.adapters.search_words import index_text
from app.config import load_settings
from app.container import Neo4jConnections, make_graph_store, make_vector_store
from app.domain.errors import BackendError, BadInputError, ConfigurationError, UnavailableError
from app.domain.models import (
    ChunkFilter,
    Direction,
    DocumentBundle,
    DocumentFilter,
    EntityFilter,
    PageRequest,
    RelationFilter,
)
from tests.contract.bundles import (
    BABBAGE,
    LONDON,
    TURING,
    BundleBuilder,
    Spec,
    all_bundles,
    lovelace_bundle,
    turing_bundle,
)
from tests.contract.conftest import GRAPH_STORES, NEO4J_URL_VAR
from tests.contract.vector_fixtures import _NEO4J_VECTOR_WIPE

URL = os.environ.get(NEO4J_URL_VAR, "")
USER = os.environ.get("KG_TEST_NEO4J_USER") or "neo4j"
PASSWORD = os.environ.get("KG_TEST_NEO4J_PASSWORD") or None
ALL = PageRequest(offset=0, limit=100)


def need_server() -> None:
    if not URL:
        pytest.skip(f"{NEO4J_URL_VAR} is not set: no Neo4j server to run this test on")


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[[], Neo4jGraphStore]:
    """Unstarted stores on the test server; the first wipes the graph."""

    def make() -> Neo4jGraphStore:
        store = GRAPH_STORES["neo4j"](tmp_path)
        assert isinstance(store, Neo4jGraphStore)
        return store

    return make


@pytest.fixture
async def store(make_store: Callable[[], Neo4jGraphStore]) -> AsyncIterator[Neo4jGraphStore]:
    s = make_store()
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def raw() -> AsyncIterator[neo4j.AsyncDriver]:
    """A driver of the test's own, to look at what the store wrote."""
    need_server()
    driver = neo4j.AsyncGraphDatabase.driver(
        URL, auth=None if PASSWORD is None else (USER, PASSWORD)
    )
    yield driver
    await driver.close()


async def query(driver: neo4j.AsyncDriver, cypher: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = await driver.execute_query(cypher, params)
    return [record.data() for record in records]


def store_at(url: str = URL, **options: Any) -> Neo4jGraphStore:
    need_server()
    return Neo4jGraphStore(Neo4jConnection(url, USER, PASSWORD, **options))


# --- schema ---------------------------------------------------------------------------


async def test_start_creates_constraints_and_indexes_online(
    make_store: Callable[[], Neo4jGraphStore], raw: neo4j.AsyncDriver
) -> None:
    first, second = make_store(), make_store()
    # From no schema at all, by two processes at once.
    for c in await query(raw, "SHOW CONSTRAINTS YIELD name WHERE name STARTS WITH 'kg_'"):
        await raw.execute_query(f"DROP CONSTRAINT {c['name']}")
    for i in await query(raw, "SHOW INDEXES YIELD name WHERE name STARTS WITH 'kg_'"):
        await raw.execute_query(f"DROP INDEX {i['name']}")
    await asyncio.gather(first.start(), second.start())
    try:
        constraints = await query(
            raw,
            "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties "
            "WHERE name STARTS WITH 'kg_' RETURN name, type, labelsOrTypes, properties",
        )
        assert {(c["name"], c["type"], c["labelsOrTypes"][0]) for c in constraints} == {
            ("kg_document_id", "UNIQUENESS", "Document"),
            ("kg_chunk_id", "UNIQUENESS", "Chunk"),
            ("kg_entity_id", "UNIQUENESS", "Entity"),
            ("kg_relation_id", "UNIQUENESS", "Relation"),
            ("kg_meta_id", "UNIQUENESS", "KGMeta"),
        }
        indexes = {
            i["name"]: i
            for i in await query(
                raw,
                "SHOW INDEXES YIELD name, type, state, labelsOrTypes, properties, options "
                "WHERE name STARTS WITH 'kg_' RETURN *",
            )
        }
        assert set(indexes) == {name for name, _ in cy.SCHEMA}
        assert {i["state"] for i in indexes.values()} == {"ONLINE"}
        assert indexes["kg_entity_mention_count"]["type"] == "RANGE"
        assert indexes["kg_document_ingested_at"]["properties"] == ["ingested_at"]
        chunk_text = indexes[cy.CHUNK_TEXT_INDEX]
        assert (chunk_text["type"], chunk_text["properties"]) == ("FULLTEXT", ["words"])
        assert chunk_text["options"]["indexConfig"]["fulltext.analyzer"] == "whitespace"
        assert not set(cy.RETIRED_INDEXES) & set(indexes)
        entity_words = indexes[cy.ENTITY_WORDS_INDEX]
        assert (entity_words["type"], entity_words["properties"]) == ("FULLTEXT", ["words"])
        assert entity_words["options"]["indexConfig"]["fulltext.analyzer"] == "whitespace"
    finally:
        await first.close()
        await second.close()


async def test_start_retires_old_indexes_and_gives_old_chunks_their_words(
    make_store: Callable[[], Neo4jGraphStore], raw: neo4j.AsyncDriver
) -> None:
    """An upgrade: a graph written before chunks had ``words`` (and with the old
    full-text index) becomes searchable at the next start."""
    bundle = lovelace_bundle()
    first = make_store()
    await first.start()
    await first.write_document(bundle)
    await first.close()
    await raw.execute_query("MATCH (c:Chunk) REMOVE c.words")
    await raw.execute_query(
        "CREATE FULLTEXT INDEX kg_chunk_text IF NOT EXISTS FOR (n:Chunk) ON EACH [n.text]"
    )
    again = make_store()
    await again.start()
    try:
        names = {i["name"] for i in await query(raw, "SHOW INDEXES YIELD name RETURN name")}
        assert "kg_chunk_text" not in names and cy.CHUNK_TEXT_INDEX in names
        words = await query(raw, "MATCH (c:Chunk) RETURN c.id AS id, c.words AS words")
        assert {w["id"]: w["words"] for w in words} == {
            c.id: index_text(c.text) for c in bundle.chunks
        }
        await raw.execute_query("CALL db.awaitIndexes(30)")
        hits = await again.keyword_search("Lovelace", 5, ChunkFilter())
        assert {h.chunk_id for h in hits} == {c.id for c in bundle.chunks}
    finally:
        await again.close()


async def test_start_retires_the_name_index_and_gives_old_entities_their_words(
    make_store: Callable[[], Neo4jGraphStore], raw: neo4j.AsyncDriver
) -> None:
    """An upgrade: a graph written before entities had ``words`` (and with the old name
    index) becomes searchable by name at the next start."""
    first = make_store()
    await first.start()
    for bundle in all_bundles():
        await first.write_document(bundle)
    await first.close()
    await raw.execute_query("MATCH (e:Entity) REMOVE e.words")
    await raw.execute_query(
        "CREATE FULLTEXT INDEX kg_entity_name IF NOT EXISTS FOR (n:Entity) "
        "ON EACH [n.name, n.aliases] "
        "OPTIONS {indexConfig: {`fulltext.analyzer`: 'standard-folding'}}"
    )
    again = make_store()
    await again.start()
    try:
        names = {i["name"] for i in await query(raw, "SHOW INDEXES YIELD name RETURN name")}
        assert "kg_entity_name" not in names and cy.ENTITY_WORDS_INDEX in names
        rows = await query(
            raw, "MATCH (e:Entity) RETURN e.name AS name, e.aliases AS aliases, e.words AS words"
        )
        assert len(rows) == 7
        assert {r["name"]: r["words"] for r in rows} == {
            r["name"]: entity_words(r["name"], r["aliases"]) for r in rows
        }
        babbage = next(r for r in rows if r["name"] == "Charles Babbage")
        assert babbage["words"] == "charles babbage mr"
        await raw.execute_query("CALL db.awaitIndexes(30)")
        assert [e.id for e in await again.search_entities(["mr"], 5)] == [BABBAGE.id]
    finally:
        await again.close()


async def test_lists_walk_the_range_indexes(raw: neo4j.AsyncDriver, store: Neo4jGraphStore) -> None:
    async def operators(cypher: str) -> set[str]:
        result = await raw.execute_query(
            "EXPLAIN " + cypher, {"type": "PERSON", "source": "blog", "offset": 0, "limit": 5}
        )
        found: set[str] = set()

        def walk(plan: dict[str, Any]) -> None:
            found.add(plan["operatorType"].split("@")[0])
            for child in plan.get("children", []):
                walk(child)

        assert result.summary.plan is not None
        walk(result.summary.plan)
        return found

    # Unfiltered pages read the sort index in order and stop after the page.
    assert {"NodeIndexScan", "PartialTop"} <= await operators(cy.list_entities(()))
    assert {"NodeIndexScan", "PartialTop"} <= await operators(cy.list_documents(()))
    assert "NodeCountFromCountStore" in await operators(cy.list_relations(()))
    # Filters seek their index.
    assert "NodeIndexSeek" in await operators(cy.list_entities((cy.ENTITY_TYPE,)))
    assert "NodeIndexSeek" in await operators(cy.list_documents((cy.DOCUMENT_SOURCE,)))


# --- nothing from input is ever Cypher ------------------------------------------------

CYPHER_BAIT = '\') MATCH (n) DETACH DELETE n // `x` {y: $z} "q" \\ RETURN 1 /* */'
NAME = "O'Brien `Admin` {x: $y} // MATCH (n) DETACH DELETE n"
TYPE = "TYPE`) DETACH DELETE n //"
REL_TYPE = "REL`]->() DELETE r //"


def hostile_bundle() -> tuple[DocumentBundle, Spec]:
    spec = Spec(NAME, TYPE)
    b = BundleBuilder(
        title=f"Title {CYPHER_BAIT}",
        ingested_at=datetime(2024, 9, 1, tzinfo=UTC),
        source="src'\"`{}$//",
        metadata={"k'`{$": "MATCH (n) DETACH DELETE n", "nested": {"$x": ["//", "`", "}"]}},
    )
    sentence = f"{NAME} wrote zyxwvut about {CYPHER_BAIT}."
    c = b.chunk(f"{sentence} Then {NAME} met Alan Turing.")
    b.mention(c, NAME, spec)
    b.mention(c, NAME, spec, occurrence=1)
    b.mention(c, "Alan Turing", TURING)
    b.relation(spec, REL_TYPE, TURING, c, sentence, 0.7)
    return b.build(), spec


async def test_hostile_text_is_stored_and_found_verbatim(store: Neo4jGraphStore) -> None:
    for bundle in all_bundles():
        await store.write_document(bundle)
    before = (
        await store.list_documents(DocumentFilter(), ALL),
        await store.list_relations(RelationFilter(), ALL),
    )
    hostile, spec = hostile_bundle()
    await store.write_document(hostile)
    await store.write_document(hostile)  # and a replay

    assert await store.get_documents([hostile.document.id]) == [hostile.document]
    assert await store.get_chunks([hostile.chunks[0].id]) == [hostile.chunks[0]]
    found = await store.list_documents(DocumentFilter(title_contains=CYPHER_BAIT.upper()), ALL)
    assert [d.id for d in found.items] == [hostile.document.id]
    by_source = await store.list_documents(DocumentFilter(source="src'\"`{}$//"), ALL)
    assert [d.title for d in by_source.items] == [hostile.document.title]

    entities = await store.list_entities(
        EntityFilter(type=TYPE, name_contains="`admin` {x: $y}"), ALL
    )
    assert [(e.id, e.name, e.type, e.mention_count) for e in entities.items] == [
        (spec.id, NAME, TYPE, 2)
    ]
    relations = await store.list_relations(RelationFilter(type=REL_TYPE), ALL)
    (relation,) = relations.items
    assert (relation.source_id, relation.target_id) == (spec.id, TURING.id)
    evidence = await store.evidence_of_relations([relation.id])
    assert evidence[relation.id][0].text == hostile.evidence[0].text
    rels = await store.relations_of_entities([spec.id], Direction.BOTH, ALL)
    assert [r.type for r in rels[spec.id].items] == [REL_TYPE]

    for text in (CYPHER_BAIT, NAME, TYPE, REL_TYPE, "MATCH (n) DETACH DELETE n", "$z", "`"):
        hits = await store.keyword_search(text, 10, ChunkFilter(entity_types=(TYPE,)))
        assert {h.chunk_id for h in hits} <= {hostile.chunks[0].id}
    hits = await store.keyword_search(f"zyxwvut {CYPHER_BAIT}", 10, ChunkFilter())
    assert hits[0].chunk_id == hostile.chunks[0].id

    # Nothing else changed, and the hostile document goes as it came.
    assert await store.delete_document(hostile.document.id) is not None
    after = (
        await store.list_documents(DocumentFilter(), ALL),
        await store.list_relations(RelationFilter(), ALL),
    )
    assert after == before
    stats = await store.stats()
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (3, 6, 7, 7)


# --- batching -------------------------------------------------------------------------


def fifty_chunk_bundle(n: int) -> DocumentBundle:
    """A document of 50 chunks, each mentioning 4 people of its own and two shared
    entities, with 3 relations per chunk."""
    shared, place = Spec("Shared Org", "ORG"), Spec("Some Place", "GPE")
    b = BundleBuilder(title=f"Fifty {n}", ingested_at=datetime(2024, 6, 1, tzinfo=UTC))
    for i in range(50):
        people = [Spec(f"Person {n}-{i}-{k}", "PERSON") for k in range(4)]
        sentence = f"{shared.name} hired {', '.join(p.name for p in people)} in {place.name}."
        c = b.chunk(f"{sentence} " + "Filler words make the chunk longer. " * 20)
        b.mention(c, shared.name, shared)
        b.mention(c, place.name, place)
        for person in people:
            b.mention(c, person.name, person)
        b.relation(shared, "LOCATED_IN", place, c, sentence, 0.5 + i / 100)
        b.relation(people[0], "WORKS_FOR", shared, c, sentence, 0.8)
        b.relation(people[1], "WORKS_FOR", shared, c, sentence, 0.6)
    return b.build()


class Runs(logging.Handler):
    """Counts the RUN messages the driver sends (one per Cypher statement)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "C: RUN" in record.getMessage():
            self.count += 1


@pytest.fixture
def runs() -> Iterator[Runs]:
    handler = Runs()
    logger = logging.getLogger("neo4j.io")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_a_batch_is_one_statement_whatever_its_size(
    store: Neo4jGraphStore, runs: Runs
) -> None:
    for bundle in all_bundles():
        await store.write_document(bundle)
    keys = [BABBAGE.id, LONDON.id, TURING.id, "ent_nope"]
    docs = [b.document.id for b in all_bundles()]
    calls = [
        store.relations_of_entities(keys, Direction.BOTH, PageRequest(offset=1, limit=1)),
        store.documents_of_entities(keys, ALL),
        store.entities_of_documents(docs, ALL),
        store.chunks_of_documents(docs, ALL),
        store.entities_of_chunks([c.id for b in all_bundles() for c in b.chunks]),
        store.get_entities(keys),
        store.list_entities(EntityFilter(type="PERSON"), ALL),
        store.keyword_search("Babbage", 5, ChunkFilter(entity_types=("GPE",))),
    ]
    for call in calls:
        before = runs.count
        await call
        assert runs.count - before == 1

    # A write is the same few statements for 1 chunk or 50 (rows go in as lists).
    before = runs.count
    await store.write_document(turing_bundle())
    small = runs.count - before
    before = runs.count
    await store.write_document(fifty_chunk_bundle(1))
    assert runs.count - before == small == 7


async def test_a_replay_updates_chunks_in_place(
    store: Neo4jGraphStore, raw: neo4j.AsyncDriver
) -> None:
    # The full-text index (and with it every score) only changes when a chunk does.
    bundle = lovelace_bundle()
    ids = "MATCH (c:Chunk) RETURN c.id AS id, elementId(c) AS node ORDER BY id"
    await store.write_document(bundle)
    first = await query(raw, ids)
    await store.write_document(bundle)
    assert await query(raw, ids) == first
    shrunk = dataclasses.replace(
        bundle,
        document=dataclasses.replace(bundle.document, chunk_count=1),
        chunks=bundle.chunks[:1],
        mentions=tuple(m for m in bundle.mentions if m.chunk_id == bundle.chunks[0].id),
    )
    await store.write_document(shrunk)
    assert await query(raw, ids) == [r for r in first if r["id"] == bundle.chunks[0].id]


# --- concurrency ----------------------------------------------------------------------


async def test_concurrent_writers_keep_derived_fields_exact(store: Neo4jGraphStore) -> None:
    shared, place = Spec("Shared Org", "ORG"), Spec("Some Place", "GPE")
    bundles = []
    for n in range(10):
        b = BundleBuilder(title=f"Doc {n}", ingested_at=datetime(2024, 1, 1, tzinfo=UTC))
        for i in range(2):
            sentence = f"{shared.name} opened in {place.name} in year {n}{i}."
            c = b.chunk(sentence)
            b.mention(c, shared.name, shared)
            b.mention(c, place.name, place)
            b.relation(
                shared, "LOCATED_IN", place, c, sentence, round(0.05 + n * 0.09 + i * 0.01, 3)
            )
        bundles.append(b.build())
    rel_id = bundles[0].relations[0].id

    await asyncio.gather(*(store.write_document(b) for b in bundles))
    org, gpe = await store.get_entities([shared.id, place.id])
    assert org is not None and gpe is not None
    assert (org.mention_count, gpe.mention_count) == (20, 20)
    (relation,) = await store.get_relations([rel_id])
    assert relation is not None
    assert relation.confidence == pytest.approx(0.87)  # doc 9, chunk 1

    # Deleting the even documents while rewriting the odd ones.
    await asyncio.gather(
        *(store.delete_document(b.document.id) for b in bundles[::2]),
        *(store.write_document(b) for b in bundles[1::2]),
    )
    (org,) = await store.get_entities([shared.id])
    assert org is not None
    assert org.mention_count == 10
    assert len((await store.evidence_of_relations([rel_id]))[rel_id]) == 10
    await asyncio.gather(*(store.delete_document(b.document.id) for b in bundles[1::2]))
    stats = await store.stats()
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (0, 0, 0, 0)


def two_entity_bundle(title: str, first: Spec, second: Spec) -> DocumentBundle:
    b = BundleBuilder(title=title, ingested_at=datetime(2024, 1, 1, tzinfo=UTC))
    sentence = f"{first.name} met {second.name} in {title}."
    c = b.chunk(sentence)
    b.mention(c, first.name, first)
    b.mention(c, second.name, second)
    b.relation(first, "MET", second, c, sentence, 0.5)
    return b.build()


async def test_a_delete_racing_a_write_never_loses_the_write(store: Neo4jGraphStore) -> None:
    # Deleting A orphans the entities B is merging at the same moment. A writer that
    # waited for the deleter's locks must not carry on with the deleted nodes.
    contested, other = Spec("Contested Org", "ORG"), Spec("Other Org", "ORG")
    for n in range(15):
        a = two_entity_bundle(f"A{n}", contested, other)
        b = two_entity_bundle(f"B{n}", contested, other)
        await store.write_document(a)
        await asyncio.gather(store.delete_document(a.document.id), store.write_document(b))
        (entity,) = await store.get_entities([contested.id])
        assert entity is not None
        assert entity.mention_count == 1
        assert await store.get_relations([b.relations[0].id]) != [None]
        chunk = b.chunks[0].id
        mentioned = (await store.entities_of_chunks([chunk]))[chunk]
        assert [e.id for e in mentioned] == [contested.id, other.id]
        assert await store.delete_document(b.document.id) is not None
        stats = await store.stats()
        assert (stats.documents, stats.entities, stats.relations) == (0, 0, 0)


async def test_a_delete_racing_a_rewrite_of_the_same_document(store: Neo4jGraphStore) -> None:
    lovelace = lovelace_bundle()
    for _ in range(10):
        await store.write_document(lovelace)
        await asyncio.gather(
            store.delete_document(lovelace.document.id), store.write_document(lovelace)
        )
        # Whichever went first, the document is there whole or not at all.
        stats = await store.stats()
        assert (stats.documents, stats.chunks, stats.entities, stats.relations) in [
            (0, 0, 0, 0),
            (1, 2, 4, 3),
        ]
        if stats.documents:
            got = await store.entities_of_documents([lovelace.document.id], ALL)
            assert [e.mention_count for e in got[lovelace.document.id].items] == [3, 3, 2, 1]
        await store.delete_document(lovelace.document.id)


# --- values ---------------------------------------------------------------------------


async def test_times_are_utc_datetimes_and_metadata_json_text(
    store: Neo4jGraphStore, raw: neo4j.AsyncDriver
) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    first = BundleBuilder(
        title="Naive", ingested_at=datetime(2024, 5, 1, 6, 0), metadata={"a": [1, "é"]}
    )
    first.chunk("Babbage in London.")
    second = BundleBuilder(
        title="Offset",
        ingested_at=datetime(2024, 5, 1, 10, 0, tzinfo=ist),  # 04:30 UTC: before "Naive"
        published_at=datetime(2024, 4, 30, 23, 59, 59, 123456, tzinfo=ist),
    )
    second.chunk("Turing in Manchester.")
    for b in (first, second):
        await store.write_document(b.build())

    naive, offset = await store.get_documents([first.document_id, second.document_id])
    assert naive is not None and offset is not None
    assert naive.ingested_at == datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    assert naive.ingested_at.tzinfo == UTC and offset.ingested_at.tzinfo == UTC
    assert offset.published_at == datetime(2024, 4, 30, 18, 29, 59, 123456, tzinfo=UTC)
    assert naive.metadata == {"a": [1, "é"]}
    listed = await store.list_documents(DocumentFilter(), ALL)
    assert [d.title for d in listed.items] == ["Naive", "Offset"]
    after = await store.list_documents(
        DocumentFilter(ingested_after=datetime(2024, 5, 1, 5, 0)), ALL
    )
    assert [d.title for d in after.items] == ["Naive"]

    (types,) = await query(
        raw,
        "MATCH (d:Document {id: $id}) RETURN valueType(d.ingested_at) AS at, "
        "valueType(d.metadata) AS meta",
        id=first.document_id,
    )
    assert types == {"at": "ZONED DATETIME NOT NULL", "meta": "STRING NOT NULL"}


# --- errors ---------------------------------------------------------------------------


async def test_a_failed_write_rolls_back_whole(store: Neo4jGraphStore) -> None:
    lovelace = lovelace_bundle()
    await store.write_document(lovelace)
    # A chunk id already used by another document fails on the unique constraint.
    b = BundleBuilder(title="Clash", ingested_at=datetime(2024, 6, 1, tzinfo=UTC))
    c = b.chunk("Babbage again.")
    b.mention(c, "Babbage", BABBAGE)
    clash = b.build()
    stolen = lovelace.chunks[0].id
    bad = dataclasses.replace(
        clash,
        chunks=(dataclasses.replace(clash.chunks[0], id=stolen),),
        mentions=tuple(dataclasses.replace(m, chunk_id=stolen) for m in clash.mentions),
    )
    with pytest.raises(BackendError) as err:
        await store.write_document(bad)
    assert not err.value.retryable
    assert isinstance(err.value.__cause__, neo4j.exceptions.ConstraintError)
    assert await store.get_documents([clash.document.id]) == [None]
    (babbage,) = await store.get_entities([BABBAGE.id])
    assert babbage is not None
    assert babbage.mention_count == 3

    # A value too long for a range index key is the caller's fault, and also undone.
    long_source = dataclasses.replace(
        turing_bundle(), document=dataclasses.replace(turing_bundle().document, source="s" * 40_000)
    )
    with pytest.raises(BadInputError, match="too long"):
        await store.write_document(long_source)
    stats = await store.stats()
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (1, 2, 4, 3)


async def test_bad_credentials_are_a_configuration_error() -> None:
    need_server()
    if PASSWORD is None:
        pytest.skip("the test server runs without auth")
    secret = "not-the-password-9f8e7d"
    with pytest.raises(ConfigurationError) as err:
        await Neo4jGraphStore(Neo4jConnection(URL, USER, secret)).start()
    assert secret not in str(err.value)
    assert isinstance(err.value.__cause__, neo4j.exceptions.AuthError)
    # Credentials inside the URL are used, and never shown either.
    target = parse_target(URL)
    host = target.url.split("://", 1)[1]
    with pytest.raises(ConfigurationError) as err:
        await Neo4jGraphStore(Neo4jConnection(f"bolt://{USER}:{secret}@{host}")).start()
    assert secret not in str(err.value)
    good = Neo4jGraphStore(Neo4jConnection(f"bolt://{USER}:{PASSWORD}@{host}"))
    await good.start()
    try:
        assert (await good.stats()).documents >= 0
    finally:
        await good.close()


async def test_an_unreachable_server_is_retryable_unavailability() -> None:
    down = Neo4jGraphStore(
        Neo4jConnection("bolt://127.0.0.1:9", "neo4j", "pw", retry_time=0.2, connect_timeout=1)
    )
    with pytest.raises(UnavailableError) as err:
        await down.start()
    assert err.value.retryable
    assert isinstance(err.value.__cause__, neo4j.exceptions.ServiceUnavailable)
    with pytest.raises(UnavailableError):
        await down.stats()  # never started
    await down.close()


async def test_an_unknown_database_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="DatabaseNotFound"):
        await store_at(database="no-such-database").start()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:7687",
        "bolt://",
        "bolt://127.0.0.1:7687/graph",
        "bolt://neo4j:hunter2@127.0.0.1:notaport",
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        Neo4jGraphStore(Neo4jConnection(url))
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    "options", [{"pool_size": 0}, {"acquire_timeout": -1.0}, {"query_timeout": 0.0}]
)
def test_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Neo4jGraphStore(Neo4jConnection("bolt://127.0.0.1:7687", **options))


async def test_timeouts_are_retryable_unavailability(
    make_store: Callable[[], Neo4jGraphStore], raw: neo4j.AsyncDriver
) -> None:
    make_store()  # wipes the graph
    lovelace = lovelace_bundle()
    store = store_at(query_timeout=1.0, pool_size=1, acquire_timeout=0.3)
    await store.start()
    try:
        await store.write_document(lovelace)
        async with raw.session() as session:
            tx = await session.begin_transaction()
            try:
                # Another transaction holds the document's lock past our query timeout.
                await tx.run(
                    "MATCH (d:Document {id: $id}) SET d.title = d.title + ''",
                    id=lovelace.document.id,
                )
                write = asyncio.create_task(store.write_document(lovelace))
                await asyncio.sleep(0.1)
                with pytest.raises(UnavailableError) as busy:  # the one connection is taken
                    await store.stats()
                assert busy.value.retryable
                assert isinstance(busy.value.__cause__, neo4j.exceptions.ConnectionPoolError)
                with pytest.raises(UnavailableError) as ended:
                    await write
                assert ended.value.retryable
            finally:
                await tx.rollback()
        await store.write_document(lovelace)  # the retry succeeds
        assert (await store.stats()).documents == 1
    finally:
        await store.close()


async def test_an_injected_driver_stays_open(store: Neo4jGraphStore) -> None:
    driver = neo4j.AsyncGraphDatabase.driver(
        URL, auth=None if PASSWORD is None else (USER, PASSWORD)
    )
    try:
        shared = Neo4jGraphStore(Neo4jConnection.borrowed(driver, where="test"))
        await shared.start()
        await shared.write_document(turing_bundle())
        assert (await store.stats()).documents == 1  # the same graph
        await shared.close()
        with pytest.raises(UnavailableError):
            await shared.stats()
        records, _, _ = await driver.execute_query("RETURN 1 AS one")
        assert records[0]["one"] == 1
    finally:
        await driver.close()


async def test_graph_and_vectors_on_one_url_share_one_connection(
    tmp_path: Path, raw: neo4j.AsyncDriver
) -> None:
    """One pool per database per process: the container hands both stores one
    connection; it stays open while either uses it and closes after the last."""
    await wipe_vectors(raw)  # no index of another dimension left over
    settings = load_settings(
        data_dir=tmp_path, graph_url=URL, vector_url=URL, neo4j={"user": USER, "password": PASSWORD}
    )
    shared = Neo4jConnections(settings)
    graph, vectors = make_graph_store(settings, shared), make_vector_store(settings, shared)
    assert isinstance(graph, Neo4jGraphStore) and isinstance(vectors, Neo4jVectorStore)
    connection = shared(URL)
    await graph.start()
    await vectors.start(8)
    assert connection.users == 2
    await graph.close()
    assert await vectors.count() == 0  # the vectors' store still works
    with pytest.raises(UnavailableError):
        await graph.stats()
    await vectors.close()
    assert connection.users == 0
    await graph.start()  # opens it again
    try:
        assert (await graph.stats()).documents >= 0
    finally:
        await graph.close()
    await wipe_vectors(raw)


async def wipe_vectors(raw: neo4j.AsyncDriver) -> None:
    for statement in _NEO4J_VECTOR_WIPE:  # CALL IN TRANSACTIONS: an implicit transaction
        async with raw.session() as session:
            await (await session.run(statement)).consume()


# --- full-text query syntax -------------------------------------------------------------


def test_lucene_escape_covers_every_operator_character() -> None:
    special = '+-&|!(){}[]^"~*?:\\/'
    assert lucene_escape(special) == "".join("\\" + ch for ch in special)
    assert lucene_escape("plain words 123") == "plain words 123"


def test_lucene_query_quotes_words_and_joins_them_with_or() -> None:
    assert lucene_query("AND OR NOT") == '"and" OR "or" OR "not"'
    assert lucene_query("text:Babbage && (London)~2") == '"text" OR "babbage" OR "london" OR "2"'
    assert lucene_query("Babb* engine ENGINE") == '"babb" OR "engine"'
    # The "s" of "Norway's" is a function word: left out, as by the SQLite store.
    assert lucene_query("Norway's Svěrák snake_case") == '"norway" OR "sverak" OR "snake" OR "case"'
    assert lucene_query("!!! // {} \\") is None
    assert lucene_query("") is None
    many = " ".join(f"w{i}" for i in range(100))
    query_text = lucene_query(many)
    assert query_text is not None
    assert query_text.count(" OR ") == 31
