"""The GraphStore contract, run against every adapter in ``conftest.GRAPH_STORES``.

The data is the three documents of ``bundles``; expected values are worked out by hand
from their text (see the comments), not read back from the store under test. Tests that
only make sense for SQLite (files, locks, schema versions) are at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pytest

from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.adapters.sqlite_job_store import SqliteJobStore
from app.adapters.sqlite_schema import GRAPH_MIGRATIONS
from app.domain.errors import (
    BackendError,
    BadInputError,
    ConfigurationError,
    UnavailableError,
)
from app.domain.models import (
    ChunkFilter,
    Direction,
    DocumentBundle,
    DocumentFilter,
    EntityFilter,
    PageRequest,
    RelationFilter,
)
from app.ports.graph_store import KEYWORD_SEARCH, GraphStore
from tests.contract.bundles import (
    ADA,
    BABBAGE,
    DIFFERENCE,
    ENGINE,
    LONDON,
    MANCHESTER,
    TURING,
    BundleBuilder,
    Spec,
    all_bundles,
    babbage_bundle,
    lovelace_bundle,
    relation_id,
    turing_bundle,
)

L, B, T = lovelace_bundle(), babbage_bundle(), turing_bundle()
L_ID, B_ID, T_ID = L.document.id, B.document.id, T.document.id
L0, L1 = L.chunks[0].id, L.chunks[1].id
B0, B1, B2 = B.chunks[0].id, B.chunks[1].id, B.chunks[2].id
T0 = T.chunks[0].id

WORKED_WITH = relation_id(ADA, "WORKED_WITH", BABBAGE)  # 0.9
DESIGNED_ENGINE = relation_id(BABBAGE, "DESIGNED", ENGINE)  # max(0.97 in L, 0.8 in B)
LOCATED_IN = relation_id(ADA, "LOCATED_IN", LONDON)  # 0.55
DESIGNED_DIFF = relation_id(BABBAGE, "DESIGNED", DIFFERENCE)  # 0.85
BORN_IN = relation_id(BABBAGE, "BORN_IN", LONDON)  # 0.75
WORKED_AT = relation_id(TURING, "WORKED_AT", MANCHESTER)  # 0.6
CITED = relation_id(TURING, "CITED", TURING)  # 0.4, a self-loop

# Mentions: Babbage 3 in L + 2 in B; Ada 3 in L; Turing 3 in T; Engine 2 in L + 1 in B;
# London 1 + 1; Difference 1; Manchester 1. Ties break by name, then id.
ENTITY_ORDER = [BABBAGE, ADA, TURING, ENGINE, LONDON, DIFFERENCE, MANCHESTER]
RELATION_ORDER = [
    DESIGNED_ENGINE,
    WORKED_WITH,
    DESIGNED_DIFF,
    BORN_IN,
    WORKED_AT,
    LOCATED_IN,
    CITED,
]
ALL = PageRequest(offset=0, limit=100)


class HasId(Protocol):
    @property
    def id(self) -> str: ...


def ids_of(items: Sequence[HasId]) -> list[str]:
    return [item.id for item in items]


# --- lifecycle --------------------------------------------------------------------------


async def test_start_is_idempotent(graph_store: GraphStore) -> None:
    await graph_store.write_document(L)
    await graph_store.start()
    stats = await graph_store.stats()
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (1, 2, 4, 3)


async def test_empty_store(graph_store: GraphStore) -> None:
    stats = await graph_store.stats()
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (0, 0, 0, 0)
    assert (await graph_store.list_documents(DocumentFilter(), ALL)).total == 0
    assert await graph_store.keyword_search("engine", 5, ChunkFilter()) == []
    assert KEYWORD_SEARCH in graph_store.capabilities


async def test_data_survives_close_and_reopen(
    make_graph_store: Callable[[], GraphStore], loaded_store: GraphStore
) -> None:
    before = (
        await loaded_store.list_documents(DocumentFilter(), ALL),
        await loaded_store.list_entities(EntityFilter(), ALL),
        await loaded_store.list_relations(RelationFilter(), ALL),
        await loaded_store.keyword_search("Babbage engine", 10, ChunkFilter()),
        await loaded_store.evidence_of_relations([DESIGNED_ENGINE]),
    )
    await loaded_store.close()
    reopened = make_graph_store()
    await reopened.start()
    try:
        after = (
            await reopened.list_documents(DocumentFilter(), ALL),
            await reopened.list_entities(EntityFilter(), ALL),
            await reopened.list_relations(RelationFilter(), ALL),
            await reopened.keyword_search("Babbage engine", 10, ChunkFilter()),
            await reopened.evidence_of_relations([DESIGNED_ENGINE]),
        )
    finally:
        await reopened.close()
    assert after == before
    assert before[0].total == 3


async def test_calls_after_close_are_unavailable(graph_store: GraphStore) -> None:
    await graph_store.close()
    with pytest.raises(UnavailableError) as err:
        await graph_store.get_documents([L_ID])
    assert err.value.retryable
    with pytest.raises(UnavailableError):
        await graph_store.write_document(L)
    await graph_store.close()  # closing twice is harmless


# --- point reads ------------------------------------------------------------------------


async def test_get_documents_round_trips_every_field(loaded_store: GraphStore) -> None:
    got = await loaded_store.get_documents([B_ID, "doc_unknown", L_ID, B_ID])
    assert got == [B.document, None, L.document, B.document]
    lovelace = got[2]
    assert lovelace is not None
    assert lovelace.metadata == {"lang": "en", "tags": ["history", "computing"], "rating": 4.5}
    assert lovelace.published_at == datetime(2023, 12, 10, tzinfo=UTC)
    assert lovelace.ingested_at.tzinfo is not None
    assert lovelace.chunk_count == 2
    assert got[0] is not None
    assert got[0].metadata is None
    assert got[0].published_at is None


async def test_get_chunks_and_relations_follow_the_ids_asked(loaded_store: GraphStore) -> None:
    assert await loaded_store.get_chunks([B2, "chk_nope", L0]) == [B.chunks[2], None, L.chunks[0]]
    relations = await loaded_store.get_relations([CITED, "rel_nope", DESIGNED_ENGINE])
    assert relations[1] is None
    assert relations[0] is not None
    assert relations[0].source_id == relations[0].target_id
    assert relations[2] is not None
    assert (relations[2].type, relations[2].source_id, relations[2].target_id) == (
        "DESIGNED",
        BABBAGE.id,
        ENGINE.id,
    )
    assert relations[2].confidence == pytest.approx(0.97)  # the best of its two evidences


async def test_entities_derive_aliases_and_counts_from_mentions(loaded_store: GraphStore) -> None:
    babbage, ada, unknown, turing, engine = await loaded_store.get_entities(
        [BABBAGE.id, ADA.id, "ent_nope", TURING.id, ENGINE.id]
    )
    assert unknown is None
    assert babbage is not None
    assert ada is not None
    assert turing is not None
    assert engine is not None
    assert (babbage.name, babbage.type, babbage.key) == ("Charles Babbage", "PERSON", BABBAGE.key)
    assert babbage.aliases == ("Babbage", "Mr Babbage")
    assert babbage.mention_count == 5
    assert (ada.aliases, ada.mention_count) == (("Lovelace",), 3)
    assert (turing.aliases, turing.mention_count) == ((), 3)
    assert (engine.aliases, engine.mention_count) == ((), 3)


async def test_empty_batches_answer_empty(loaded_store: GraphStore) -> None:
    assert await loaded_store.get_documents([]) == []
    assert await loaded_store.get_chunks([]) == []
    assert await loaded_store.get_entities([]) == []
    assert await loaded_store.get_relations([]) == []
    assert await loaded_store.chunks_of_documents([], ALL) == {}
    assert await loaded_store.entities_of_documents([], ALL) == {}
    assert await loaded_store.entities_of_chunks([]) == {}
    assert await loaded_store.documents_of_entities([], ALL) == {}
    assert await loaded_store.relations_of_entities([], Direction.BOTH, ALL) == {}
    assert await loaded_store.evidence_of_relations([]) == {}


# --- lists ------------------------------------------------------------------------------


async def test_list_documents_newest_first_with_pages(loaded_store: GraphStore) -> None:
    full = await loaded_store.list_documents(DocumentFilter(), ALL)
    assert ids_of(full.items) == [T_ID, B_ID, L_ID]
    assert full.total == 3
    middle = await loaded_store.list_documents(DocumentFilter(), PageRequest(offset=1, limit=1))
    assert (ids_of(middle.items), middle.total) == ([B_ID], 3)
    past = await loaded_store.list_documents(DocumentFilter(), PageRequest(offset=3, limit=5))
    assert (past.items, past.total) == ([], 3)
    none = await loaded_store.list_documents(DocumentFilter(), PageRequest(offset=0, limit=0))
    assert (none.items, none.total) == ([], 3)


async def test_list_documents_filters(loaded_store: GraphStore) -> None:
    async def ids(f: DocumentFilter) -> tuple[list[str], int]:
        got = await loaded_store.list_documents(f, ALL)
        return ids_of(got.items), got.total

    assert await ids(DocumentFilter(source="encyclopedia")) == ([B_ID, L_ID], 2)
    assert await ids(DocumentFilter(source="nowhere")) == ([], 0)
    assert await ids(DocumentFilter(title_contains="CHARLES")) == ([B_ID], 1)
    assert await ids(DocumentFilter(title_contains="engine")) == ([L_ID], 1)
    assert await ids(DocumentFilter(title_contains="%")) == ([], 0)  # no LIKE wildcards
    assert await ids(DocumentFilter(title_contains="_")) == ([], 0)
    after = datetime(2024, 2, 1, tzinfo=UTC)
    assert await ids(DocumentFilter(ingested_after=after)) == ([T_ID, B_ID], 2)
    assert await ids(DocumentFilter(source="encyclopedia", ingested_after=after)) == ([B_ID], 1)


async def test_list_entities_by_mention_count_then_name(loaded_store: GraphStore) -> None:
    full = await loaded_store.list_entities(EntityFilter(), ALL)
    assert ids_of(full.items) == [s.id for s in ENTITY_ORDER]
    assert full.total == 7
    counts = [e.mention_count for e in full.items]
    assert counts == sorted(counts, reverse=True)
    second_page = await loaded_store.list_entities(EntityFilter(), PageRequest(offset=2, limit=2))
    assert ids_of(second_page.items) == [TURING.id, ENGINE.id]
    assert second_page.total == 7


async def test_list_entities_filters(loaded_store: GraphStore) -> None:
    people = await loaded_store.list_entities(EntityFilter(type="PERSON"), ALL)
    assert ids_of(people.items) == [BABBAGE.id, ADA.id, TURING.id]
    engines = await loaded_store.list_entities(EntityFilter(name_contains="ENGINE"), ALL)
    assert (ids_of(engines.items), engines.total) == ([ENGINE.id, DIFFERENCE.id], 2)
    both = await loaded_store.list_entities(EntityFilter(type="GPE", name_contains="lon"), ALL)
    assert ids_of(both.items) == [LONDON.id]
    assert (await loaded_store.list_entities(EntityFilter(name_contains="%"), ALL)).total == 0
    assert (await loaded_store.list_entities(EntityFilter(type="nope"), ALL)).items == []


async def test_list_relations_by_confidence_then_id(loaded_store: GraphStore) -> None:
    full = await loaded_store.list_relations(RelationFilter(), ALL)
    assert ids_of(full.items) == RELATION_ORDER
    assert full.total == 7
    page = await loaded_store.list_relations(RelationFilter(), PageRequest(offset=5, limit=10))
    assert (ids_of(page.items), page.total) == ([LOCATED_IN, CITED], 7)


async def test_list_relations_filters(loaded_store: GraphStore) -> None:
    async def ids(f: RelationFilter) -> list[str]:
        return ids_of((await loaded_store.list_relations(f, ALL)).items)

    assert await ids(RelationFilter(type="DESIGNED")) == [DESIGNED_ENGINE, DESIGNED_DIFF]
    assert await ids(RelationFilter(source_id=BABBAGE.id)) == [
        DESIGNED_ENGINE,
        DESIGNED_DIFF,
        BORN_IN,
    ]
    assert await ids(RelationFilter(target_id=LONDON.id)) == [BORN_IN, LOCATED_IN]
    assert await ids(RelationFilter(type="BORN_IN", target_id=LONDON.id)) == [BORN_IN]
    assert await ids(RelationFilter(source_id="ent_nope")) == []


async def test_negative_pages_are_bad_input(loaded_store: GraphStore) -> None:
    with pytest.raises(BadInputError):
        await loaded_store.list_documents(DocumentFilter(), PageRequest(offset=-1, limit=5))
    with pytest.raises(BadInputError):
        await loaded_store.list_entities(EntityFilter(), PageRequest(offset=0, limit=-1))
    with pytest.raises(BadInputError):
        await loaded_store.chunks_of_documents([L_ID], PageRequest(offset=-3, limit=5))


# --- edges, batched by key --------------------------------------------------------------


async def test_chunks_of_documents_pages_per_key(loaded_store: GraphStore) -> None:
    got = await loaded_store.chunks_of_documents([B_ID, "doc_nope", L_ID], ALL)
    assert list(got) == [B_ID, "doc_nope", L_ID]
    assert got[B_ID].items == list(B.chunks)
    assert got[B_ID].total == 3
    assert (got["doc_nope"].items, got["doc_nope"].total) == ([], 0)
    assert [c.index for c in got[L_ID].items] == [0, 1]
    paged = await loaded_store.chunks_of_documents([B_ID, L_ID], PageRequest(offset=1, limit=1))
    assert ids_of(paged[B_ID].items) == [B1]
    assert ids_of(paged[L_ID].items) == [L1]
    assert (paged[B_ID].total, paged[L_ID].total) == (3, 2)
    past = await loaded_store.chunks_of_documents([B_ID, L_ID], PageRequest(offset=2, limit=5))
    assert ids_of(past[B_ID].items) == [B2]
    assert (past[L_ID].items, past[L_ID].total) == ([], 2)


async def test_entities_of_documents_in_entity_order(loaded_store: GraphStore) -> None:
    got = await loaded_store.entities_of_documents([L_ID, B_ID, T_ID, "doc_nope"], ALL)
    assert ids_of(got[L_ID].items) == [BABBAGE.id, ADA.id, ENGINE.id, LONDON.id]
    assert ids_of(got[B_ID].items) == [BABBAGE.id, ENGINE.id, LONDON.id, DIFFERENCE.id]
    assert ids_of(got[T_ID].items) == [TURING.id, MANCHESTER.id]
    assert (got[L_ID].total, got[B_ID].total, got[T_ID].total) == (4, 4, 2)
    assert got["doc_nope"].total == 0
    assert got[L_ID].items[0].mention_count == 5  # the global count, not the document's
    paged = await loaded_store.entities_of_documents([L_ID, T_ID], PageRequest(offset=1, limit=2))
    assert ids_of(paged[L_ID].items) == [ADA.id, ENGINE.id]
    assert ids_of(paged[T_ID].items) == [MANCHESTER.id]
    assert (paged[L_ID].total, paged[T_ID].total) == (4, 2)


async def test_entities_of_chunks_in_order_of_first_mention(loaded_store: GraphStore) -> None:
    got = await loaded_store.entities_of_chunks([L0, L1, B2, T0, "chk_nope"])
    assert ids_of(got[L0]) == [ADA.id, BABBAGE.id, ENGINE.id, LONDON.id]
    assert ids_of(got[L1]) == [ADA.id, BABBAGE.id]  # "Lovelace wrote ... Mr Babbage"
    assert ids_of(got[T0]) == [TURING.id, MANCHESTER.id]  # Turing counted once
    assert got[B2] == []  # a chunk without mentions
    assert got["chk_nope"] == []


async def test_documents_of_entities_newest_first(loaded_store: GraphStore) -> None:
    got = await loaded_store.documents_of_entities([BABBAGE.id, ADA.id, TURING.id, "x"], ALL)
    assert ids_of(got[BABBAGE.id].items) == [B_ID, L_ID]
    assert ids_of(got[ADA.id].items) == [L_ID]
    assert ids_of(got[TURING.id].items) == [T_ID]
    assert (got["x"].items, got["x"].total) == ([], 0)
    assert got[BABBAGE.id].items[0] == B.document
    paged = await loaded_store.documents_of_entities(
        [BABBAGE.id, LONDON.id], PageRequest(offset=1, limit=1)
    )
    assert ids_of(paged[BABBAGE.id].items) == [L_ID]
    assert ids_of(paged[LONDON.id].items) == [L_ID]
    assert paged[LONDON.id].total == 2


async def test_relations_of_entities_honours_direction(loaded_store: GraphStore) -> None:
    keys = [BABBAGE.id, LONDON.id, TURING.id, "ent_nope"]
    out = await loaded_store.relations_of_entities(keys, Direction.OUT, ALL)
    assert ids_of(out[BABBAGE.id].items) == [DESIGNED_ENGINE, DESIGNED_DIFF, BORN_IN]
    assert out[LONDON.id].items == []
    assert ids_of(out[TURING.id].items) == [WORKED_AT, CITED]
    assert out["ent_nope"].total == 0
    inc = await loaded_store.relations_of_entities(keys, Direction.IN, ALL)
    assert ids_of(inc[BABBAGE.id].items) == [WORKED_WITH]
    assert ids_of(inc[LONDON.id].items) == [BORN_IN, LOCATED_IN]
    assert ids_of(inc[TURING.id].items) == [CITED]
    both = await loaded_store.relations_of_entities(keys, Direction.BOTH, ALL)
    assert ids_of(both[BABBAGE.id].items) == [DESIGNED_ENGINE, WORKED_WITH, DESIGNED_DIFF, BORN_IN]
    assert ids_of(both[TURING.id].items) == [WORKED_AT, CITED]  # the self-loop once
    assert both[TURING.id].total == 2
    paged = await loaded_store.relations_of_entities(
        [BABBAGE.id, TURING.id], Direction.BOTH, PageRequest(offset=1, limit=2)
    )
    assert ids_of(paged[BABBAGE.id].items) == [WORKED_WITH, DESIGNED_DIFF]
    assert ids_of(paged[TURING.id].items) == [CITED]
    assert (paged[BABBAGE.id].total, paged[TURING.id].total) == (4, 2)


async def test_evidence_of_relations_best_first(loaded_store: GraphStore) -> None:
    got = await loaded_store.evidence_of_relations([DESIGNED_ENGINE, CITED, "rel_nope"])
    designed = got[DESIGNED_ENGINE]
    assert [(e.document_id, e.chunk_id) for e in designed] == [(L_ID, L0), (B_ID, B0)]
    assert [e.confidence for e in designed] == pytest.approx([0.97, 0.8])
    assert (
        designed[0].text == "Babbage designed the Analytical Engine as a general-purpose computer."
    )
    assert [e.relation_id for e in got[CITED]] == [CITED]
    assert got["rel_nope"] == []


# --- idempotent writes ------------------------------------------------------------------


async def snapshot(store: GraphStore) -> tuple[object, ...]:
    return (
        await store.stats(),
        await store.list_documents(DocumentFilter(), ALL),
        await store.list_entities(EntityFilter(), ALL),
        await store.list_relations(RelationFilter(), ALL),
        await store.evidence_of_relations(RELATION_ORDER),
        await store.chunks_of_documents([L_ID, B_ID, T_ID], ALL),
        await store.keyword_search("Babbage engine Turing", 20, ChunkFilter()),
    )


async def test_replaying_bundles_changes_nothing(loaded_store: GraphStore) -> None:
    before = await snapshot(loaded_store)
    for bundle in [*all_bundles(), lovelace_bundle()]:
        await loaded_store.write_document(bundle)
    assert await snapshot(loaded_store) == before


def renamed(bundle: DocumentBundle, names: dict[str, str]) -> DocumentBundle:
    """``bundle`` with other display names for some entities (same ids: same keys)."""
    entities = tuple(dataclasses.replace(e, name=names.get(e.id, e.name)) for e in bundle.entities)
    return dataclasses.replace(bundle, entities=entities)


async def test_entity_names_do_not_depend_on_the_order_documents_arrive_in(
    graph_store: GraphStore,
) -> None:
    """Workers store documents in any order: a merged entity keeps its longest name,
    among equals the smallest in code point order ("BABBAGE" < "Babbage")."""
    lovelace = renamed(L, {BABBAGE.id: "Babbage", ENGINE.id: "Analytical Engine"})
    babbage = renamed(B, {BABBAGE.id: "Charles Babbage", ENGINE.id: "Analytical ENGINE"})
    aliases: list[tuple[str, ...]] = []
    for order in ((lovelace, babbage), (babbage, lovelace)):
        for bundle in order:
            await graph_store.write_document(bundle)
        babbage_entity, engine = await graph_store.get_entities([BABBAGE.id, ENGINE.id])
        assert babbage_entity is not None and engine is not None
        assert (babbage_entity.name, engine.name) == ("Charles Babbage", "Analytical ENGINE")
        aliases.append(babbage_entity.aliases)  # the other names, sorted
        found = await graph_store.list_entities(EntityFilter(name_contains="charles babbage"), ALL)
        assert [e.id for e in found.items] == [BABBAGE.id]  # the name filter follows
        for bundle in order:
            await graph_store.delete_document(bundle.document.id)
        assert await graph_store.get_entities([BABBAGE.id]) == [None]
    assert aliases[0] == aliases[1] == tuple(sorted(aliases[0])) and len(aliases[0]) >= 2


async def test_replay_keeps_the_first_ingestion_time(loaded_store: GraphStore) -> None:
    later = dataclasses.replace(L.document, ingested_at=datetime(2030, 1, 1, tzinfo=UTC))
    await loaded_store.write_document(dataclasses.replace(L, document=later))
    (doc,) = await loaded_store.get_documents([L_ID])
    assert doc is not None
    assert doc.ingested_at == L.document.ingested_at


async def test_duplicate_mentions_and_evidence_in_a_bundle_count_once(
    graph_store: GraphStore,
) -> None:
    weaker = dataclasses.replace(L.evidence[1], confidence=0.1)
    doubled = dataclasses.replace(
        L, mentions=L.mentions + L.mentions[:2], evidence=(*L.evidence, weaker)
    )
    await graph_store.write_document(doubled)
    (babbage,) = await graph_store.get_entities([BABBAGE.id])
    assert babbage is not None
    assert babbage.mention_count == 3
    evidence = (await graph_store.evidence_of_relations([DESIGNED_ENGINE]))[DESIGNED_ENGINE]
    assert [e.confidence for e in evidence] == pytest.approx([0.97])


async def test_the_first_writer_names_a_shared_entity(loaded_store: GraphStore) -> None:
    b = BundleBuilder(title="Notes", ingested_at=datetime(2024, 4, 1, tzinfo=UTC))
    c = b.chunk("C. Babbage lectured at Cambridge.")
    b.mention(c, "C. Babbage", BABBAGE)
    bundle = b.build()
    renamed = dataclasses.replace(bundle.entities[0], name="C. Babbage")
    await loaded_store.write_document(dataclasses.replace(bundle, entities=(renamed,)))
    (babbage,) = await loaded_store.get_entities([BABBAGE.id])
    assert babbage is not None
    assert babbage.name == "Charles Babbage"
    assert babbage.aliases == ("Babbage", "C. Babbage", "Mr Babbage")
    assert babbage.mention_count == 6


async def test_rewriting_a_document_replaces_its_rows(loaded_store: GraphStore) -> None:
    # L re-ingested with only its first chunk: chunk 1 and its mentions must go.
    first = L.chunks[0]
    shrunk = dataclasses.replace(
        L,
        document=dataclasses.replace(L.document, chunk_count=1),
        chunks=(first,),
        mentions=tuple(m for m in L.mentions if m.chunk_id == first.id),
    )
    await loaded_store.write_document(shrunk)
    assert await loaded_store.get_chunks([L1]) == [None]
    ada, babbage = await loaded_store.get_entities([ADA.id, BABBAGE.id])
    assert ada is not None
    assert (ada.aliases, ada.mention_count) == ((), 1)
    assert babbage is not None
    assert (babbage.aliases, babbage.mention_count) == (("Babbage",), 4)
    assert await loaded_store.keyword_search("algorithm", 5, ChunkFilter()) == []
    assert (await loaded_store.stats()).chunks == 5


async def test_concurrent_writes_and_reads(graph_store: GraphStore) -> None:
    results = await asyncio.gather(
        *(graph_store.write_document(b) for b in [*all_bundles(), *all_bundles()]),
        *(graph_store.list_entities(EntityFilter(), ALL) for _ in range(5)),
    )
    assert all(r is None for r in results[:6])
    stats = await graph_store.stats()
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (3, 6, 7, 7)


@pytest.mark.parametrize("delay", [0.0, 0.0002, 0.0005, 0.001, 0.002, 0.01])
async def test_a_cancelled_write_leaves_the_store_usable(
    graph_store: GraphStore, delay: float
) -> None:
    # Cancelled before, inside or after its transaction, depending on the delay.
    task = asyncio.create_task(graph_store.write_document(L))
    await asyncio.sleep(delay)
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    await graph_store.write_document(T)
    stats = await graph_store.stats()
    # The cancelled write happened whole or not at all.
    expected = [(1, 1, 2, 2), (2, 3, 6, 5)]
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) in expected


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(
            lambda b: dataclasses.replace(
                b, mentions=(dataclasses.replace(b.mentions[0], chunk_id="chk_elsewhere"),)
            ),
            id="mention-outside-the-bundle",
        ),
        pytest.param(
            lambda b: dataclasses.replace(
                b, mentions=tuple(m for m in b.mentions if m.entity_id != MANCHESTER.id)
            ),
            id="entity-without-mention",
        ),
        pytest.param(lambda b: dataclasses.replace(b, evidence=()), id="relation-without-evidence"),
        pytest.param(
            lambda b: dataclasses.replace(
                b, document=dataclasses.replace(b.document, chunk_count=9)
            ),
            id="wrong-chunk-count",
        ),
        pytest.param(
            lambda b: dataclasses.replace(b, chunks=(b.chunks[0], b.chunks[0])),
            id="duplicate-chunk",
        ),
        pytest.param(
            lambda b: dataclasses.replace(
                b, document=dataclasses.replace(b.document, metadata={"when": datetime.now(UTC)})
            ),
            id="metadata-not-json",
        ),
    ],
)
async def test_malformed_bundles_are_refused_whole(
    graph_store: GraphStore, spoil: Callable[[DocumentBundle], DocumentBundle]
) -> None:
    with pytest.raises(BadInputError):
        await graph_store.write_document(spoil(T))
    stats = await graph_store.stats()
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (0, 0, 0, 0)


# --- deletes ----------------------------------------------------------------------------


async def test_delete_removes_orphans_and_keeps_shared(loaded_store: GraphStore) -> None:
    deleted = await loaded_store.delete_document(L_ID)
    assert deleted is not None
    assert deleted.document_id == L_ID
    assert deleted.chunk_ids == (L0, L1)
    assert deleted.removed_entity_ids == (ADA.id,)
    assert deleted.removed_relation_ids == tuple(sorted([WORKED_WITH, LOCATED_IN]))

    assert await loaded_store.get_documents([L_ID]) == [None]
    assert await loaded_store.get_chunks([L0, L1]) == [None, None]
    assert await loaded_store.get_relations([WORKED_WITH, LOCATED_IN]) == [None, None]
    ada, babbage, engine, london = await loaded_store.get_entities(
        [ADA.id, BABBAGE.id, ENGINE.id, LONDON.id]
    )
    assert ada is None
    assert babbage is not None
    assert (babbage.aliases, babbage.mention_count) == (("Babbage",), 2)
    assert engine is not None
    assert engine.mention_count == 1
    assert london is not None
    assert london.mention_count == 1

    (designed,) = await loaded_store.get_relations([DESIGNED_ENGINE])
    assert designed is not None
    assert designed.confidence == pytest.approx(0.8)
    evidence = await loaded_store.evidence_of_relations([DESIGNED_ENGINE])
    assert [e.document_id for e in evidence[DESIGNED_ENGINE]] == [B_ID]

    docs = await loaded_store.documents_of_entities([BABBAGE.id], ALL)
    assert (ids_of(docs[BABBAGE.id].items), docs[BABBAGE.id].total) == ([B_ID], 1)
    rels = await loaded_store.relations_of_entities([BABBAGE.id], Direction.BOTH, ALL)
    assert ids_of(rels[BABBAGE.id].items) == [DESIGNED_DIFF, DESIGNED_ENGINE, BORN_IN]
    assert await loaded_store.keyword_search("Lovelace algorithm", 5, ChunkFilter()) == []
    assert await loaded_store.entities_of_chunks([L0]) == {L0: []}
    stats = await loaded_store.stats()
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (2, 4, 6, 5)


async def test_delete_unknown_or_twice_is_none(loaded_store: GraphStore) -> None:
    assert await loaded_store.delete_document("doc_unknown") is None
    assert await loaded_store.delete_document(T_ID) is not None
    assert await loaded_store.delete_document(T_ID) is None
    assert (await loaded_store.stats()).documents == 2


async def test_delete_removes_a_self_loop_with_its_entity(loaded_store: GraphStore) -> None:
    deleted = await loaded_store.delete_document(T_ID)
    assert deleted is not None
    assert set(deleted.removed_entity_ids) == {TURING.id, MANCHESTER.id}
    assert set(deleted.removed_relation_ids) == {WORKED_AT, CITED}


async def test_delete_everything_then_rewrite(loaded_store: GraphStore) -> None:
    before = await snapshot(loaded_store)
    for doc_id in (L_ID, B_ID, T_ID):
        assert await loaded_store.delete_document(doc_id) is not None
    stats = await loaded_store.stats()
    assert (stats.documents, stats.chunks, stats.entities, stats.relations) == (0, 0, 0, 0)
    assert (await loaded_store.list_entities(EntityFilter(), ALL)).total == 0
    assert await loaded_store.keyword_search("Babbage", 5, ChunkFilter()) == []
    for bundle in all_bundles():
        await loaded_store.write_document(bundle)
    assert await snapshot(loaded_store) == before


# --- keyword search ---------------------------------------------------------------------


async def test_keyword_search_ranks_by_relevance(loaded_store: GraphStore) -> None:
    hits = await loaded_store.keyword_search("engine", 10, ChunkFilter())
    assert [h.chunk_id for h in hits] == [B0, L0]  # three "engine"s in B0, two in L0
    assert [h.document_id for h in hits] == [B_ID, L_ID]
    assert all(h.score > 0 for h in hits)
    assert hits[0].score >= hits[1].score
    # Words are OR-ed; chunks holding both rank first.
    both = await loaded_store.keyword_search("Babbage London", 10, ChunkFilter())
    assert {h.chunk_id for h in both[:2]} == {L0, B1}
    assert {h.chunk_id for h in both} == {L0, L1, B0, B1}
    scores = [h.score for h in both]
    assert scores == sorted(scores, reverse=True)
    assert all(s > 0 for s in scores)


async def test_keyword_search_top_k_is_the_head_of_the_whole_ranking(
    loaded_store: GraphStore,
) -> None:
    # With or without a filter that lets every document through (two ways to the
    # answer on SQLite), the best k are the first k of the full ranking, ties included.
    everything = ChunkFilter(document_ids=(B_ID, L_ID, T_ID))
    for query in ("Babbage London engine", "worked", "the", "Babbage Turing loom"):
        full = await loaded_store.keyword_search(query, 50, ChunkFilter())
        assert full, query
        assert await loaded_store.keyword_search(query, 50, everything) == full
        for k in range(1, len(full) + 1):
            assert await loaded_store.keyword_search(query, k, ChunkFilter()) == full[:k]
            assert await loaded_store.keyword_search(query, k, everything) == full[:k]


async def test_keyword_search_is_case_insensitive_and_limited(loaded_store: GraphStore) -> None:
    assert [h.chunk_id for h in await loaded_store.keyword_search("TURING", 5, ChunkFilter())] == [
        T0
    ]
    assert len(await loaded_store.keyword_search("Babbage", 2, ChunkFilter())) == 2
    assert await loaded_store.keyword_search("Babbage", 0, ChunkFilter()) == []
    with pytest.raises(BadInputError):
        await loaded_store.keyword_search("Babbage", -1, ChunkFilter())
    multi = await loaded_store.keyword_search("loom Manchester", 5, ChunkFilter())
    assert {h.chunk_id for h in multi} == {B0, T0}


async def test_keyword_search_filters_by_document(loaded_store: GraphStore) -> None:
    only_l = await loaded_store.keyword_search("Babbage", 10, ChunkFilter(document_ids=(L_ID,)))
    assert {h.chunk_id for h in only_l} == {L0, L1}
    two = await loaded_store.keyword_search(
        "Babbage Turing", 10, ChunkFilter(document_ids=(T_ID, B_ID))
    )
    assert {h.chunk_id for h in two} == {B0, B1, T0}
    assert await loaded_store.keyword_search("Babbage", 10, ChunkFilter(document_ids=())) == []
    unknown = ChunkFilter(document_ids=("doc_nope",))
    assert await loaded_store.keyword_search("Babbage", 10, unknown) == []


async def test_keyword_search_filters_by_entity_type(loaded_store: GraphStore) -> None:
    async def chunks(
        types: tuple[str, ...] | None, docs: tuple[str, ...] | None = None
    ) -> set[str]:
        f = ChunkFilter(document_ids=docs, entity_types=types)
        return {h.chunk_id for h in await loaded_store.keyword_search("worked", 10, f)}

    assert await chunks(None) == {L0, T0}
    assert await chunks(("ORG",)) == {T0}  # the University of Manchester
    assert await chunks(("GPE",)) == {L0}  # London
    assert await chunks(("PERSON",)) == {L0, T0}
    assert await chunks(("ORG", "GPE")) == {L0, T0}
    assert await chunks(("PERSON",), (L_ID,)) == {L0}
    assert await chunks(("NOPE",)) == set()
    assert await chunks(()) == set()
    # The filter applies before k: the one ORG chunk is found even with k=1.
    hits = await loaded_store.keyword_search(
        "Babbage worked", 1, ChunkFilter(entity_types=("ORG",))
    )
    assert [h.chunk_id for h in hits] == [T0]


HOSTILE = [
    "",
    "   ",
    "!!!",
    '"',
    '""',
    "'",
    "*",
    "Babb*",
    "NEAR(",
    "NEAR(Babbage London, 2)",
    "-Babbage",
    "AND OR NOT",
    "Babbage AND",
    "OR",
    "NOT Babbage",
    "(",
    ")",
    "^Babbage",
    "text:Babbage",
    "{text}: Babbage",
    "Babbage + London",
    '"Babbage',
    "Babbage'; DROP TABLE chunks; --",
    "Zürich",
    "東京タワー",
    "🚀🚀",
    "a\u0301",
    "\x00",
    "___",
    "x" * 5_000,
    " ".join(["word"] * 500),
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_keyword_search_treats_any_string_as_words(
    loaded_store: GraphStore, query: str
) -> None:
    hits = await loaded_store.keyword_search(query, 10, ChunkFilter())
    chunk_ids = {L0, L1, B0, B1, B2, T0}
    assert all(h.chunk_id in chunk_ids and h.score > 0 for h in hits)
    if "Babbage" in query and "*" not in query:
        assert {h.chunk_id for h in hits} >= {L0, L1, B0, B1}
    if not any(ch.isalnum() for ch in query):
        assert hits == []
    assert (await loaded_store.stats()).chunks == 6


async def test_keyword_search_has_no_prefix_or_operator_syntax(loaded_store: GraphStore) -> None:
    assert await loaded_store.keyword_search("Babb*", 10, ChunkFilter()) == []
    # "NOT" is a word, not a negation: chunks with Babbage are still found.
    hits = await loaded_store.keyword_search("Turing NOT Babbage", 10, ChunkFilter())
    assert {T0, L0, B0} <= {h.chunk_id for h in hits}


async def test_keyword_search_matches_unicode_words(graph_store: GraphStore) -> None:
    godel = Spec("Kurt Gödel", "PERSON")
    b = BundleBuilder(title="Gödel", ingested_at=datetime(2024, 5, 1, tzinfo=UTC))
    c = b.chunk("Kurt Gödel lectured in Zürich before Princeton. 東京 hosted none of it.")
    b.mention(c, "Kurt Gödel", godel)
    await graph_store.write_document(b.build())
    for query in ("ZÜRICH", "gödel", "東京"):
        hits = await graph_store.keyword_search(query, 5, ChunkFilter())
        assert [h.document_id for h in hits] == [b.document_id], query
    (entity,) = (await graph_store.list_entities(EntityFilter(name_contains="GÖDEL"), ALL)).items
    assert entity.id == godel.id


# --- SQLite only: files, locks, schema versions -----------------------------------------


def _sqlite(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


async def test_sqlite_creates_directories_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "graph.sqlite3"
    store = SqliteGraphStore(path)
    await store.start()
    await store.start()
    await store.close()
    store = SqliteGraphStore(path)  # migrating an up-to-date file is a no-op
    await store.start()
    await store.close()
    conn = _sqlite(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(GRAPH_MIGRATIONS)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"documents", "chunks", "entities", "mentions", "relations", "evidence"} <= tables
        assert {"chunks_fts", "entities_fts"} <= tables
    finally:
        conn.close()


async def test_sqlite_full_text_indexes_stay_in_sync(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite3"
    store = SqliteGraphStore(path)
    await store.start()
    for bundle in [*all_bundles(), lovelace_bundle()]:
        await store.write_document(bundle)
    await store.delete_document(B_ID)
    await store.close()
    conn = _sqlite(path)
    try:
        # FTS5 compares its index with the content table and raises on any difference.
        conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')")
        conn.execute("INSERT INTO entities_fts (entities_fts) VALUES ('integrity-check')")
        names = conn.execute(
            "SELECT e.name FROM entities_fts JOIN entities AS e ON e.seq = entities_fts.rowid "
            "WHERE entities_fts MATCH 'lovelace' ORDER BY e.name"
        ).fetchall()
        assert [r[0] for r in names] == ["Ada Lovelace"]
        assert conn.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0] == 3
    finally:
        conn.close()


async def test_sqlite_locked_database_is_retryable(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite3"
    store = SqliteGraphStore(path, busy_timeout_ms=50)
    await store.start()
    other = _sqlite(path)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(UnavailableError) as err:
            await store.write_document(L)
        assert err.value.retryable
        assert isinstance(err.value.__cause__, sqlite3.OperationalError)
        other.execute("ROLLBACK")
        await store.write_document(L)  # the retry succeeds
        assert (await store.stats()).documents == 1
    finally:
        other.close()
        await store.close()


async def test_sqlite_failed_write_rolls_back_whole(tmp_path: Path) -> None:
    store = SqliteGraphStore(tmp_path / "graph.sqlite3")
    await store.start()
    try:
        await store.write_document(L)
        # A chunk id already used by another document fails half-way through the write.
        b = BundleBuilder(title="Clash", ingested_at=datetime(2024, 6, 1, tzinfo=UTC))
        c = b.chunk("Babbage again.")
        b.mention(c, "Babbage", BABBAGE)
        clash = b.build()
        stolen = dataclasses.replace(clash.chunks[0], id=L0)
        bad = dataclasses.replace(
            clash,
            chunks=(stolen,),
            mentions=tuple(dataclasses.replace(m, chunk_id=L0) for m in clash.mentions),
        )
        with pytest.raises(BackendError) as err:
            await store.write_document(bad)
        assert not err.value.retryable
        assert await store.get_documents([clash.document.id]) == [None]
        (babbage,) = await store.get_entities([BABBAGE.id])
        assert babbage is not None
        assert babbage.mention_count == 3
        assert (await store.stats()).chunks == 2
    finally:
        await store.close()


async def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite3"
    store = SqliteGraphStore(path)
    await store.start()
    await store.close()
    conn = _sqlite(path)
    conn.execute(f"PRAGMA user_version = {len(GRAPH_MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(ConfigurationError, match="newer"):
        await SqliteGraphStore(path).start()


async def test_sqlite_refuses_another_stores_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    jobs = SqliteJobStore(path)
    await jobs.start()
    await jobs.close()
    with pytest.raises(ConfigurationError, match="not a graph database"):
        await SqliteGraphStore(path).start()


async def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "graph.sqlite3"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 20)
    with pytest.raises(ConfigurationError):
        await SqliteGraphStore(path).start()
    with pytest.raises(ConfigurationError):
        await SqliteGraphStore(tmp_path).start()  # a directory


async def test_sqlite_answers_a_batch_with_one_statement(tmp_path: Path) -> None:
    store = SqliteGraphStore(tmp_path / "graph.sqlite3")
    await store.start()
    try:
        for bundle in all_bundles():
            await store.write_document(bundle)
        statements: list[str] = []
        for reader in store._readers:
            await reader.set_trace_callback(statements.append)
        keys = [BABBAGE.id, LONDON.id, TURING.id, ADA.id]
        await store.relations_of_entities(keys, Direction.BOTH, PageRequest(offset=1, limit=1))
        await store.documents_of_entities(keys, ALL)
        await store.entities_of_documents([L_ID, B_ID, T_ID], ALL)
        await store.list_entities(EntityFilter(type="PERSON"), ALL)
        assert len(statements) == 4
    finally:
        await store.close()
