"""SQLite only: a keyword search over more chunks than its postings budget scores only
the candidates (``app.adapters.keyword_candidates``): the chunks holding its rarest
words. Scores are the unpruned search's; a chunk holding only commoner words is not
scored; fewer candidates than k means a second, unpruned search; filtered searches and
stores within the budget are never pruned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.domain.errors import ConfigurationError
from app.domain.models import ChunkFilter, ChunkHit, DocumentBundle
from tests.contract.bundles import BundleBuilder
from tests.contract.sqlite_reads import record_reads

# 40 chunks: "zephyr" in 2 (one with "river"), "river" in 6 (one of them four times,
# which outranks the long chunk holding only "zephyr"), the rest other words.
CHUNKS = (
    "zephyr river",
    "zephyr " + " ".join(f"long{i}" for i in range(30)),
    "river river river river",
    *(f"river bank{i}" for i in range(4)),
    *(f"filler{i} word{i}" for i in range(33)),
)
BUDGET = 3  # zephyr's 2 postings fit, river's 6 more do not


def rivers() -> DocumentBundle:
    """One document whose chunks are ``CHUNKS``."""
    builder = BundleBuilder("Rivers", datetime(2026, 12, 2, tzinfo=UTC))
    for text in CHUNKS:
        builder.chunk(text)
    return builder.build()


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteGraphStore, SqliteGraphStore]]:
    """The same file twice: pruned past ``BUDGET`` postings, and never pruned."""
    path = tmp_path / "graph.sqlite3"
    pruned = SqliteGraphStore(path, readers=1, keyword_postings=BUDGET)
    whole = SqliteGraphStore(path, readers=1, keyword_postings=None)
    await pruned.start()
    await whole.start()
    try:
        await pruned.write_document(rivers())
        yield pruned, whole
    finally:
        await whole.close()
        await pruned.close()


async def test_candidates_keep_the_unpruned_scores(
    stores: tuple[SqliteGraphStore, SqliteGraphStore],
) -> None:
    pruned, whole = stores
    every = {
        h.chunk_id: h.score for h in await whole.keyword_search("zephyr river", 50, ChunkFilter())
    }
    hits = await pruned.keyword_search("zephyr river", 2, ChunkFilter())
    assert len(hits) == 2
    assert all(every[h.chunk_id] == h.score for h in hits)  # exactly: the same bm25


async def test_a_chunk_with_only_commoner_words_is_not_a_candidate(
    stores: tuple[SqliteGraphStore, SqliteGraphStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    pruned, whole = stores
    unpruned = await whole.keyword_search("zephyr river", 2, ChunkFilter())
    reads = record_reads(pruned, monkeypatch)
    hits = await pruned.keyword_search("zephyr river", 2, ChunkFilter())
    chunk_text = await chunk_texts(whole, hits + unpruned)
    assert [chunk_text[h.chunk_id] for h in unpruned] == ["zephyr river", "river river river river"]
    assert [chunk_text[h.chunk_id] for h in hits] == ["zephyr river", CHUNKS[1]]
    assert [kind(q) for _, q in reads] == ["count", "among"]


async def test_fewer_candidates_than_k_searches_again_unpruned(
    stores: tuple[SqliteGraphStore, SqliteGraphStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    pruned, whole = stores
    reads = record_reads(pruned, monkeypatch)
    for k in (3, 8):
        hits = await pruned.keyword_search("zephyr river", k, ChunkFilter())
        assert hits == await whole.keyword_search("zephyr river", k, ChunkFilter())
    assert [kind(q) for _, q in reads] == ["count", "among", "all"] * 2


async def test_words_within_the_budget_together_are_all_scored(
    stores: tuple[SqliteGraphStore, SqliteGraphStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    pruned, whole = stores
    reads = record_reads(pruned, monkeypatch)
    hits = await pruned.keyword_search("zephyr unheard", 5, ChunkFilter())  # 2 postings
    assert hits == await whole.keyword_search("zephyr unheard", 5, ChunkFilter())
    assert len(hits) == 2
    assert [kind(q) for _, q in reads] == ["count", "all"]
    assert await pruned.keyword_search("unheard unseen", 5, ChunkFilter()) == []


async def test_a_filtered_search_is_never_pruned(
    stores: tuple[SqliteGraphStore, SqliteGraphStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    pruned, whole = stores
    (doc,) = {h.document_id for h in await whole.keyword_search("river", 1, ChunkFilter())}
    f = ChunkFilter(document_ids=(doc,))
    reads = record_reads(pruned, monkeypatch)
    hits = await pruned.keyword_search("zephyr river", 2, f)
    assert hits == await whole.keyword_search("zephyr river", 2, f)
    assert [kind(q) for _, q in reads] == ["filtered"]


async def test_a_store_within_the_budget_is_never_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteGraphStore(tmp_path / "graph.sqlite3", readers=1, keyword_postings=len(CHUNKS))
    await store.start()
    try:
        await store.write_document(rivers())
        reads = record_reads(store, monkeypatch)
        assert len(await store.keyword_search("zephyr river", 2, ChunkFilter())) == 2
        assert [kind(q) for _, q in reads] == ["all"]
    finally:
        await store.close()


async def test_a_pruned_search_runs_in_one_piece_even_with_idle_readers(
    stores: tuple[SqliteGraphStore, SqliteGraphStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Split, each part would count the words' chunks again for bm25; the unpruned
    search that follows too few candidates is split as usual."""
    pruned, _ = stores
    split = SqliteGraphStore(pruned.path, readers=2, keyword_part_rows=1, keyword_postings=BUDGET)
    await split.start()
    try:
        reads = record_reads(split, monkeypatch)
        for query in ("zephyr river", "river bank0 bank1", "river zephyr bank0"):
            for k in (1, 2, 3, 6):
                assert await split.keyword_search(query, k, ChunkFilter()) == (
                    await pruned.keyword_search(query, k, ChunkFilter())
                ), (query, k)
        among = sum(kind(q) == "among" for _, q in reads)
        assert among
        assert among == sum(kind(q) == "count" for _, q in reads)  # one per search
        assert sorted({n for n, q in reads if kind(q) == "all"}) == [0, 1]  # split
    finally:
        await split.close()


@pytest.mark.parametrize("postings", [0, -5])
def test_a_budget_below_one_is_a_configuration_error(tmp_path: Path, postings: int) -> None:
    with pytest.raises(ConfigurationError, match="keyword_postings"):
        SqliteGraphStore(tmp_path / "graph.sqlite3", keyword_postings=postings)


def kind(statement: str) -> str:
    """Which keyword statement ``statement`` is."""
    if "count(*)" in statement:
        return "count"
    if "+rowid IN" in statement:
        return "among"
    if "json_each(:documents)" in statement:
        return "filtered"
    return "all" if "bm25(" in statement else "other"


async def chunk_texts(store: SqliteGraphStore, hits: list[ChunkHit]) -> dict[str, str]:
    found = await store.get_chunks([h.chunk_id for h in hits])
    return {c.id: c.text for c in found if c is not None}
