"""``GraphStore.version``, run against every adapter in ``conftest.GRAPH_STORES``.

Part of the graph store contract (``test_graph_store`` holds most of it). Cached reads
are keyed by the version, so what matters is that it grows with every committed write
and every delete that removed something, that no two commits share a number (even from
concurrent writers), and that every store on the same data sees the same number. Tests
compare versions with each other, never with a fixed number: a server-backed store may
have counted writes before the test wiped its graph.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable

import pytest

from app.domain.errors import BadInputError
from app.ports.graph_store import GraphStore
from tests.contract.bundles import all_bundles, babbage_bundle, lovelace_bundle, turing_bundle

L, B, T = lovelace_bundle(), babbage_bundle(), turing_bundle()


@pytest.fixture
async def second_store(make_graph_store: Callable[[], GraphStore]) -> AsyncIterator[GraphStore]:
    """Another started store on the same data (another process, as far as it knows)."""
    store = make_graph_store()
    await store.start()
    yield store
    await store.close()


async def test_version_grows_with_writes_and_deletes(graph_store: GraphStore) -> None:
    start = await graph_store.version()
    assert isinstance(start, int) and start >= 0
    assert await graph_store.version() == start  # reading changes nothing
    await graph_store.write_document(L)
    written = await graph_store.version()
    assert written > start
    await graph_store.write_document(B)
    second = await graph_store.version()
    assert second > written
    await graph_store.write_document(L)  # a replay is a write: never goes back
    replayed = await graph_store.version()
    assert replayed >= second
    await graph_store.get_entities([e.id for e in L.entities])
    await graph_store.search_entities(["babbage"], 5)
    assert await graph_store.version() == replayed  # reads change nothing
    assert await graph_store.delete_document(L.document.id) is not None
    deleted = await graph_store.version()
    assert deleted > replayed


async def test_a_delete_of_nothing_or_a_refused_write_never_lowers_it(
    graph_store: GraphStore,
) -> None:
    await graph_store.write_document(T)
    before = await graph_store.version()
    assert await graph_store.delete_document("doc_000000000000000000000000") is None
    assert await graph_store.version() >= before
    broken = dataclasses.replace(T, evidence=())  # relations without evidence
    with pytest.raises(BadInputError):
        await graph_store.write_document(broken)
    after = await graph_store.version()
    assert after >= before
    await graph_store.delete_document(T.document.id)
    assert await graph_store.version() > after


async def test_every_store_on_the_same_data_sees_the_same_version(
    graph_store: GraphStore, second_store: GraphStore
) -> None:
    await graph_store.write_document(L)
    assert await second_store.version() == await graph_store.version()
    before = await graph_store.version()
    await second_store.write_document(B)  # written by the other one
    assert await graph_store.version() > before
    assert await graph_store.version() == await second_store.version()
    before = await graph_store.version()
    await second_store.delete_document(L.document.id)
    assert await graph_store.version() > before
    assert await graph_store.version() == await second_store.version()


async def test_concurrent_writers_each_raise_it(
    graph_store: GraphStore, second_store: GraphStore
) -> None:
    """No lost update: commits from two stores at once never share a version, so the
    version passes the number of writes and removing deletes."""
    start = await graph_store.version()
    writes = [
        store.write_document(bundle)
        for bundle in [*all_bundles(), *all_bundles()]
        for store in (graph_store, second_store)
    ]
    await asyncio.gather(*writes)
    written = await second_store.version()
    assert written >= start + len(writes)
    deletes = await asyncio.gather(
        graph_store.delete_document(L.document.id),
        second_store.delete_document(B.document.id),
        graph_store.delete_document(T.document.id),
    )
    assert all(d is not None for d in deletes)
    assert await graph_store.version() >= written + len(deletes)
