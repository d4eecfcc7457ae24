"""The GraphStore walks (``neighborhood``, ``shortest_path``), run against every adapter.

Part of the graph store contract (``test_graph_store`` holds the rest; this file keeps
both near the size of a module). Expected answers are worked out by hand from the
bundles and the rules in ``GraphStore``'s docstrings, so every store is held to the same
answer; the last test also loads one tie-heavy graph into SQLite and Neo4j and compares
them walk for walk.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.adapters import graph_walks
from app.domain.errors import BadInputError, QueryTooComplexError
from app.domain.models import DocumentBundle, GraphPath, Subgraph
from app.ports.graph_store import GraphStore
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
    relation_id,
)
from tests.contract.conftest import GRAPH_STORES, NEO4J_URL_VAR

WORKED_WITH = relation_id(ADA, "WORKED_WITH", BABBAGE)  # 0.9
DESIGNED_ENGINE = relation_id(BABBAGE, "DESIGNED", ENGINE)  # 0.97
LOCATED_IN = relation_id(ADA, "LOCATED_IN", LONDON)  # 0.55
DESIGNED_DIFF = relation_id(BABBAGE, "DESIGNED", DIFFERENCE)  # 0.85
BORN_IN = relation_id(BABBAGE, "BORN_IN", LONDON)  # 0.75
WORKED_AT = relation_id(TURING, "WORKED_AT", MANCHESTER)  # 0.6
CITED = relation_id(TURING, "CITED", TURING)  # 0.4, a self-loop
UNKNOWN = "ent_000000000000000000000000"


def graph_bundle(title: str, edges: Sequence[tuple[Spec, Spec, float]]) -> DocumentBundle:
    """One document whose single chunk states every edge (source KNOWS target)."""
    b = BundleBuilder(title=title, ingested_at=datetime(2024, 4, 1, tzinfo=UTC))
    sentences = [f"{s.name} knows {t.name} (edge {i})." for i, (s, t, _) in enumerate(edges)]
    c = b.chunk(" ".join(sentences))
    for spec in dict.fromkeys(spec for s, t, _ in edges for spec in (s, t)):
        b.mention(c, spec.name, spec)
    for (s, t, conf), sentence in zip(edges, sentences, strict=True):
        b.relation(s, "KNOWS", t, c, sentence, conf)
    return b.build()


def knows(source: Spec, target: Spec) -> str:
    return relation_id(source, "KNOWS", target)


def entity_ids(found: Subgraph | GraphPath | None) -> list[str]:
    assert found is not None
    return [e.id for e in found.entities]


def relation_ids(found: Subgraph | GraphPath | None) -> list[str]:
    assert found is not None
    return [r.id for r in found.relations]


# --- neighborhood -------------------------------------------------------------------------


async def test_neighborhood_depth_one_nearest_first(loaded_store: GraphStore) -> None:
    # Ada's neighbours: Babbage (0.9) before London (0.55); Babbage-London joins them.
    found = await loaded_store.neighborhood(ADA.id, 1, 50)
    assert entity_ids(found) == [ADA.id, BABBAGE.id, LONDON.id]
    assert relation_ids(found) == [WORKED_WITH, BORN_IN, LOCATED_IN]
    assert found is not None
    assert found.entities[1].name == "Charles Babbage"
    assert found.entities[1].mention_count == 5


async def test_neighborhood_depth_two(loaded_store: GraphStore) -> None:
    # Hop 2 (from Babbage and London): Engine by 0.97, Difference by 0.85.
    found = await loaded_store.neighborhood(ADA.id, 2, 50)
    assert entity_ids(found) == [ADA.id, BABBAGE.id, LONDON.id, ENGINE.id, DIFFERENCE.id]
    assert relation_ids(found) == [
        DESIGNED_ENGINE,
        WORKED_WITH,
        DESIGNED_DIFF,
        BORN_IN,
        LOCATED_IN,
    ]
    # Nothing lies further: a deeper walk finds the same.
    assert await loaded_store.neighborhood(ADA.id, 3, 50) == found


async def test_neighborhood_limit_keeps_the_best_of_the_last_hop(
    loaded_store: GraphStore,
) -> None:
    found = await loaded_store.neighborhood(ADA.id, 2, 4)
    assert entity_ids(found) == [ADA.id, BABBAGE.id, LONDON.id, ENGINE.id]
    assert relation_ids(found) == [DESIGNED_ENGINE, WORKED_WITH, BORN_IN, LOCATED_IN]
    # Limit 2 cuts hop 1: London (0.55) goes, and the walk stops there.
    found = await loaded_store.neighborhood(ADA.id, 2, 2)
    assert entity_ids(found) == [ADA.id, BABBAGE.id]
    assert relation_ids(found) == [WORKED_WITH]
    found = await loaded_store.neighborhood(ADA.id, 2, 1)
    assert entity_ids(found) == [ADA.id]
    assert relation_ids(found) == []


async def test_neighborhood_ignores_direction(loaded_store: GraphStore) -> None:
    # London is only ever a target: Babbage (0.75) before Ada (0.55), whatever the ids.
    found = await loaded_store.neighborhood(LONDON.id, 1, 50)
    assert entity_ids(found) == [LONDON.id, BABBAGE.id, ADA.id]
    found = await loaded_store.neighborhood(ENGINE.id, 1, 50)
    assert entity_ids(found) == [ENGINE.id, BABBAGE.id]
    assert relation_ids(found) == [DESIGNED_ENGINE]


async def test_neighborhood_with_a_self_loop(loaded_store: GraphStore) -> None:
    found = await loaded_store.neighborhood(TURING.id, 1, 50)
    assert entity_ids(found) == [TURING.id, MANCHESTER.id]
    assert relation_ids(found) == [WORKED_AT, CITED]
    found = await loaded_store.neighborhood(TURING.id, 0, 50)
    assert entity_ids(found) == [TURING.id]
    assert relation_ids(found) == [CITED]
    # The other component is never reached.
    found = await loaded_store.neighborhood(MANCHESTER.id, 3, 50)
    assert entity_ids(found) == [MANCHESTER.id, TURING.id]


async def test_neighborhood_of_an_unknown_entity_is_none(loaded_store: GraphStore) -> None:
    assert await loaded_store.neighborhood(UNKNOWN, 1, 50) is None
    assert await loaded_store.neighborhood("not an id", 1, 50) is None


@pytest.mark.parametrize(("depth", "limit"), [(-1, 10), (1, 0), (1, -5)])
async def test_neighborhood_bad_arguments(loaded_store: GraphStore, depth: int, limit: int) -> None:
    with pytest.raises(BadInputError):
        await loaded_store.neighborhood(ADA.id, depth, limit)


HUB = Spec("Hubert", "PERSON")
P, Q, R, S = (Spec(n, "PERSON") for n in ("Petra", "Quentin", "Rosalind", "Sigmund"))


async def test_neighborhood_ties_break_by_entity_id(graph_store: GraphStore) -> None:
    # Four neighbours, all at 0.5 but Sigmund at 0.9: Sigmund first, then by id.
    await graph_store.write_document(
        graph_bundle("hub", [(HUB, P, 0.5), (Q, HUB, 0.5), (HUB, R, 0.5), (S, HUB, 0.9)])
    )
    tied = sorted(spec.id for spec in (P, Q, R))
    found = await graph_store.neighborhood(HUB.id, 1, 3)
    assert entity_ids(found) == [HUB.id, S.id, tied[0]]
    found = await graph_store.neighborhood(HUB.id, 1, 10)
    assert entity_ids(found) == [HUB.id, S.id, *tied]


# --- shortest path --------------------------------------------------------------------------


async def test_path_between_adjacent_entities(loaded_store: GraphStore) -> None:
    found = await loaded_store.shortest_path(ADA.id, LONDON.id, 4)
    assert entity_ids(found) == [ADA.id, LONDON.id]
    assert relation_ids(found) == [LOCATED_IN]
    assert found is not None and found.length == 1
    # Against the relation's direction too.
    found = await loaded_store.shortest_path(LONDON.id, ADA.id, 1)
    assert entity_ids(found) == [LONDON.id, ADA.id]
    assert relation_ids(found) == [LOCATED_IN]


async def test_path_of_two_hops(loaded_store: GraphStore) -> None:
    found = await loaded_store.shortest_path(ADA.id, ENGINE.id, 4)
    assert entity_ids(found) == [ADA.id, BABBAGE.id, ENGINE.id]
    assert relation_ids(found) == [WORKED_WITH, DESIGNED_ENGINE]
    assert found is not None and found.length == 2
    found = await loaded_store.shortest_path(DIFFERENCE.id, ENGINE.id, 2)
    assert entity_ids(found) == [DIFFERENCE.id, BABBAGE.id, ENGINE.id]


async def test_no_path_within_max_hops(loaded_store: GraphStore) -> None:
    assert await loaded_store.shortest_path(ADA.id, ENGINE.id, 1) is None
    assert await loaded_store.shortest_path(ADA.id, ENGINE.id, 0) is None


async def test_path_to_itself_has_length_zero(loaded_store: GraphStore) -> None:
    for hops in (0, 3):
        found = await loaded_store.shortest_path(TURING.id, TURING.id, hops)
        assert entity_ids(found) == [TURING.id]
        assert relation_ids(found) == []  # not the self-loop
        assert found is not None and found.length == 0


async def test_unreachable_or_unknown_ends_have_no_path(loaded_store: GraphStore) -> None:
    assert await loaded_store.shortest_path(ADA.id, TURING.id, 6) is None
    assert await loaded_store.shortest_path(ADA.id, UNKNOWN, 6) is None
    assert await loaded_store.shortest_path(UNKNOWN, ADA.id, 6) is None
    assert await loaded_store.shortest_path(UNKNOWN, UNKNOWN, 6) is None


async def test_path_bad_arguments(loaded_store: GraphStore) -> None:
    with pytest.raises(BadInputError):
        await loaded_store.shortest_path(ADA.id, LONDON.id, -1)


START, A, B, END, FAR = (
    Spec(n, "PERSON") for n in ("Stella", "Arnold", "Beatrix", "Edmund", "Farid")
)


async def test_path_ties_break_by_confidence_then_relation_id(graph_store: GraphStore) -> None:
    # Two diamonds: Stella-Arnold-Edmund and Stella-Beatrix-Edmund tie at every step;
    # towards Farid, Beatrix's relation (0.8, written Farid->Beatrix) beats Arnold's.
    edges = [
        (START, A, 0.5),
        (B, START, 0.5),
        (A, END, 0.7),
        (END, B, 0.7),
        (A, FAR, 0.6),
        (FAR, B, 0.8),
    ]
    await graph_store.write_document(graph_bundle("diamonds", edges))
    last, middle = min((knows(A, END), A), (knows(END, B), B))
    first = knows(START, A) if middle is A else knows(B, START)
    found = await graph_store.shortest_path(START.id, END.id, 4)
    assert entity_ids(found) == [START.id, middle.id, END.id]
    assert relation_ids(found) == [first, last]
    found = await graph_store.shortest_path(START.id, FAR.id, 4)
    assert entity_ids(found) == [START.id, B.id, FAR.id]
    assert relation_ids(found) == [knows(B, START), knows(FAR, B)]


async def test_a_path_search_that_reaches_too_far_is_refused(
    loaded_store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # From Ada, hop 1 reaches 2 entities and hop 2 two more: 5 in all.
    monkeypatch.setattr(graph_walks, "PATH_SEARCH_MAX_ENTITIES", 4)
    assert entity_ids(await loaded_store.shortest_path(ADA.id, LONDON.id, 4)) == [
        ADA.id,
        LONDON.id,
    ]
    with pytest.raises(QueryTooComplexError):
        await loaded_store.shortest_path(ADA.id, ENGINE.id, 4)


# --- both stores, one graph -------------------------------------------------------------------


async def test_walks_agree_across_stores_on_a_graph_full_of_ties(tmp_path: Path) -> None:
    """Forty entities, ninety edges, three confidences: ties everywhere."""
    if not os.environ.get(NEO4J_URL_VAR):
        pytest.skip(f"{NEO4J_URL_VAR} is not set: nothing to compare SQLite with")
    rng = random.Random(4)
    names = [f"Person{chr(65 + i // 26)}{chr(65 + i % 26)}x" for i in range(40)]
    specs = [Spec(name, "PERSON") for name in names]
    pairs = {tuple(rng.sample(range(40), 2)) for _ in range(90)}
    edges = [(specs[s], specs[t], rng.choice((0.5, 0.6, 0.7))) for s, t in sorted(pairs)]
    edges.append((specs[0], specs[0], 0.9))
    bundle = graph_bundle("ties", edges)
    stores = [GRAPH_STORES[name](tmp_path) for name in ("sqlite", "neo4j")]
    try:
        for store in stores:
            await store.start()
            await store.write_document(bundle)
        for spec in specs:
            hoods = [await store.neighborhood(spec.id, 2, 9) for store in stores]
            assert hoods[0] == hoods[1], spec.name
            assert hoods[0] is not None and len(hoods[0].entities) <= 9
        for i in range(0, 40, 3):
            start, end = specs[i], specs[(i * 7 + 5) % 40]
            paths = [await store.shortest_path(start.id, end.id, 6) for store in stores]
            assert paths[0] == paths[1], (start.name, end.name)
    finally:
        for store in stores:
            await store.close()
