"""``GraphStore.search_entities``, run against every adapter in ``conftest.GRAPH_STORES``.

Part of the graph store contract (``test_graph_store`` holds most of it). The data is
the three documents of ``bundles``; expected answers are worked out by hand from them:

    entity             words of name and aliases           mentions
    Charles Babbage    charles babbage; babbage; mr babbage        5
    Ada Lovelace       ada lovelace; lovelace                      3
    Alan Turing        alan turing                                 3
    Analytical Engine  analytical engine                           3
    London             london                                      2
    Difference Engine  difference engine                           1
    University of M.   university of manchester                    1

Most distinct words matched first, then mentions, then id.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.adapters.sqlite_schema import GRAPH_APPLICATION_ID, GRAPH_MIGRATIONS
from app.adapters.sqlite_support import migrate, open_connection
from app.domain.errors import BadInputError
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
    babbage_bundle,
    lovelace_bundle,
)


async def found(store: GraphStore, words: Sequence[str], k: int = 10) -> list[str]:
    return [e.id for e in await store.search_entities(words, k)]


def by_id(*specs: Spec) -> list[str]:
    """Ids of entities that tie on words and mentions: they come in id order."""
    return sorted(s.id for s in specs)


async def test_finds_by_a_word_of_the_name_or_of_an_alias(loaded_store: GraphStore) -> None:
    assert await found(loaded_store, ["lovelace"]) == [ADA.id]
    assert await found(loaded_store, ["mr"]) == [BABBAGE.id]  # only "Mr Babbage" holds it
    assert await found(loaded_store, ["engine"]) == [ENGINE.id, DIFFERENCE.id]
    assert await found(loaded_store, ["of"]) == [MANCHESTER.id]  # stop words are words
    (babbage,) = await loaded_store.search_entities(["BABBAGE"], 10)
    assert (babbage.name, babbage.aliases, babbage.mention_count) == (
        "Charles Babbage",
        ("Babbage", "Mr Babbage"),
        5,
    )


async def test_ranks_by_words_matched_then_mentions_then_id(loaded_store: GraphStore) -> None:
    # Two words beat more mentions.
    assert await found(loaded_store, ["difference", "engine"]) == [DIFFERENCE.id, ENGINE.id]
    one_word_each = ["manchester", "london", "ada", "alan"]
    assert await found(loaded_store, one_word_each) == [
        *by_id(ADA, TURING),  # 3 mentions each
        LONDON.id,
        MANCHESTER.id,
    ]
    # A word given twice (or in two spellings) counts once.
    assert await found(loaded_store, ["london", "LONDON", "London", "engine"]) == [
        ENGINE.id,
        LONDON.id,
        DIFFERENCE.id,
    ]
    # An element of several words gives each of them.
    assert await found(loaded_store, ["Charles Babbage", "engine"]) == [
        BABBAGE.id,
        ENGINE.id,
        DIFFERENCE.id,
    ]


async def test_k_limits_the_answer(loaded_store: GraphStore) -> None:
    words = ["engine", "london", "babbage", "turing"]
    every = [BABBAGE.id, *by_id(ENGINE, TURING), LONDON.id, DIFFERENCE.id]
    assert await found(loaded_store, words, 10) == every
    for k in (1, 2, 3, 5):
        assert await found(loaded_store, words, k) == every[:k]
    assert await found(loaded_store, words, 0) == []
    with pytest.raises(BadInputError):
        await loaded_store.search_entities(words, -1)


async def test_no_words_or_unknown_words_find_nothing(loaded_store: GraphStore) -> None:
    assert await found(loaded_store, []) == []
    assert await found(loaded_store, ["", "   ", "!!!", "___"]) == []
    assert await found(loaded_store, ["zzqxv", "babbages", "lovelac"]) == []  # whole words


async def test_an_empty_store_finds_nothing(graph_store: GraphStore) -> None:
    assert await found(graph_store, ["babbage"]) == []


# Query syntax of FTS5 and Lucene: each is plain text, split into words like any other.
SYNTAX = [
    '"',
    "*",
    "OR",
    ":",
    "(",
    "~",
    ")",
    "\\",
    "^",
    "{",
    "[",
    "]",
    "/",
    "+",
    "-",
    "&&",
    "||",
    "!",
    "?",
    "AND",
    "NOT",
    "NEAR(",
    "babbage*",
    "babb*",
    "name:babbage",
    '"babbage',
    "(lovelace",
    "lovelace~",
    "lovelace~2",
    "-babbage",
    "babbage^2",
    "{text}: lovelace",
    "lovelace'; DROP TABLE entities; --",
]


@pytest.mark.parametrize("word", SYNTAX)
async def test_query_syntax_is_plain_words(loaded_store: GraphStore, word: str) -> None:
    result = await found(loaded_store, [word])
    if "babbage" in word:
        assert result == [BABBAGE.id]
    elif "lovelace" in word:
        assert result == [ADA.id]  # "drop", "table", "entities" name nothing
    else:
        assert result == []  # no words, or words no name holds ("or", "and", "babb")


async def test_all_the_syntax_at_once_is_plain_words(loaded_store: GraphStore) -> None:
    assert await found(loaded_store, SYNTAX) == [BABBAGE.id, ADA.id]


ZURICH = Spec("Zürich", "GPE")
GODEL = Spec("Kurt Gödel", "PERSON")
SAO_PAULO = Spec("São Paulo", "GPE")


async def test_case_and_accents_are_folded(graph_store: GraphStore) -> None:
    b = BundleBuilder(title="Gödel abroad", ingested_at=datetime(2024, 5, 1, tzinfo=UTC))
    c = b.chunk(
        "Kurt Gödel lectured in Zürich, which the signs spell ZÜRICH.\n"
        "Kurt\nFriedrich Gödel then sailed for São Paulo."
    )
    b.mention(c, "Kurt Gödel", GODEL)
    b.mention(c, "Zürich", ZURICH)
    b.mention(c, "ZÜRICH", ZURICH)
    b.mention(c, "Kurt\nFriedrich Gödel", GODEL)  # an alias across a line break
    b.mention(c, "São Paulo", SAO_PAULO)
    await graph_store.write_document(b.build())
    for word in ("zurich", "ZURICH", "Zürich", "zÜrich", "Zu\u0308rich"):
        assert await found(graph_store, [word]) == [ZURICH.id], word
    assert await found(graph_store, ["godel", "GÖDEL"]) == [GODEL.id]
    assert await found(graph_store, ["friedrich"]) == [GODEL.id]  # the word after the break
    assert await found(graph_store, ["sao", "PAULO"]) == [SAO_PAULO.id]
    assert await found(graph_store, ["zur", "sa", "kurtfriedrich"]) == []


async def test_follows_writes_renames_and_deletes(loaded_store: GraphStore) -> None:
    # A longer name arrives with another document: the entity is found by its words.
    lovelace = lovelace_bundle()
    b = BundleBuilder(title="Royal Society", ingested_at=datetime(2024, 6, 1, tzinfo=UTC))
    c = b.chunk("Babbage was elected a Fellow of the Royal Society.")
    b.mention(c, "Babbage", BABBAGE)
    bundle = b.build()
    longer = dataclasses.replace(bundle.entities[0], name="Charles Babbage FRS")
    await loaded_store.write_document(dataclasses.replace(bundle, entities=(longer,)))
    assert await found(loaded_store, ["frs"]) == [BABBAGE.id]
    assert await found(loaded_store, ["charles"]) == [BABBAGE.id]  # now an alias
    # Deleting the document that held "Mr Babbage" and "Lovelace" takes their words.
    await loaded_store.delete_document(lovelace.document.id)
    assert await found(loaded_store, ["mr"]) == []
    assert await found(loaded_store, ["lovelace", "ada"]) == []
    # One mention each left for the engines: they tie, so come in id order.
    assert await found(loaded_store, ["babbage", "engine"]) == [
        BABBAGE.id,
        *by_id(ENGINE, DIFFERENCE),
    ]
    (engine,) = await loaded_store.search_entities(["analytical"], 1)
    assert engine.mention_count == 1  # the count the ranking reads follows too
    await loaded_store.write_document(lovelace)
    assert await found(loaded_store, ["mr"]) == [BABBAGE.id]


# --- SQLite only: the migration that re-indexes entity names ----------------------------


async def test_sqlite_migration_reindexes_aliases_as_words(tmp_path: Path) -> None:
    """A file at schema 1 indexed the JSON text of aliases, where an alias holding a
    line break reads as ``\\n``: the next word was glued to an ``n``. Step 2 indexes
    the aliases' words and starts the graph version at 0."""
    path = tmp_path / "graph.sqlite3"
    conn = await open_connection(path, busy_timeout_ms=1_000)
    try:
        await migrate(
            conn, application_id=GRAPH_APPLICATION_ID, steps=GRAPH_MIGRATIONS[:1], what="graph"
        )
        await conn.execute(
            "INSERT INTO entities (id, key, name, type, aliases, mention_count) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ZURICH.id, ZURICH.key, "Zürich", "GPE", '["City of\\nZurich", "ZH"]', 2),
        )
        hits = await conn.execute_fetchall(
            "SELECT rowid FROM entities_fts WHERE entities_fts MATCH 'city'"
        )
        assert len(list(hits)) == 1
        old = await conn.execute_fetchall(
            "SELECT rowid FROM entities_fts WHERE entities_fts MATCH 'nzurich'"
        )
        assert len(list(old)) == 1  # what schema 1 made of the line break
    finally:
        await conn.close()
    store = SqliteGraphStore(path)
    await store.start()
    try:
        assert await found(store, ["zurich"]) == [ZURICH.id]
        assert await found(store, ["nzurich"]) == []
        assert await found(store, ["zh", "city"]) == [ZURICH.id]
        assert await store.version() == 0
        await store.write_document(babbage_bundle())
        assert await store.version() == 1
        assert await found(store, ["london", "zurich"]) == [ZURICH.id, LONDON.id]  # 2 to 1
    finally:
        await store.close()
    check = sqlite3.connect(path, isolation_level=None)
    try:
        assert check.execute("PRAGMA user_version").fetchone()[0] == len(GRAPH_MIGRATIONS)
        check.execute("INSERT INTO entities_fts (entities_fts) VALUES ('integrity-check')")
    finally:
        check.close()
