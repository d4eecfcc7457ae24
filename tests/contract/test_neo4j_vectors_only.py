"""What only the Neo4j vector store does: search through the HNSW index with filters
over-fetched (the contract's small stores are scanned exactly), sharing one database
with the graph store's labels and between processes, and its own refusals.

Runs when ``KG_TEST_NEO4J_URL`` names a server (see ``vector_fixtures._neo4j``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import neo4j
import numpy as np
import pytest

from app.adapters import neo4j_vector_store as n4v
from app.adapters.neo4j_connection import Neo4jConnection
from app.domain.errors import BadInputError, ConfigurationError, UnavailableError
from app.domain.models import ChunkFilter, VectorPoint
from tests.contract.vector_fixtures import (
    EMBEDDER_DIM,
    NEO4J_URL_VAR,
    SMALL_DIM,
    VECTOR_STORES,
    chunk_name,
    clustered_vectors,
    exact_top,
    make_points,
    near,
)

POINTS = 2_000
QUERIES = range(0, POINTS, 100)
MIN_OVERLAP = 0.95
# Chunk i mentions RARE when i % 97 == 0 (21 of 2,000), COMMON when i % 5 == 0.
TYPES: tuple[tuple[str, ...], ...] = tuple(
    tuple(t for t, hit in (("RARE", i % 97 == 0), ("COMMON", i % 5 == 0)) if hit)
    for i in range(97 * 5)
)


def _url() -> str:
    url = os.environ.get(NEO4J_URL_VAR)
    if not url:
        pytest.skip(f"{NEO4J_URL_VAR} is not set: no Neo4j server to run the neo4j vector store on")
    return url


def _credentials() -> tuple[str, str | None]:
    return os.environ.get("KG_TEST_NEO4J_USER") or "neo4j", (
        os.environ.get("KG_TEST_NEO4J_PASSWORD") or None
    )


def _indexed_store() -> n4v.Neo4jVectorStore:
    """A store on the same database that always searches through the vector index."""
    user, password = _credentials()
    return n4v.Neo4jVectorStore(
        Neo4jConnection(_url(), user, password, query_timeout=30.0), exact_scan_max=0
    )


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered_vectors(POINTS, EMBEDDER_DIM, seed=71)


@pytest.fixture
async def indexed(tmp_path: Path, vectors: np.ndarray) -> AsyncIterator[n4v.Neo4jVectorStore]:
    """2,000 clustered vectors written by the contract's store, searched by another one
    (a second process would see the same) that goes through the HNSW index."""
    writer = VECTOR_STORES["neo4j"](tmp_path)  # wipes the label first
    await writer.start(EMBEDDER_DIM)
    points = make_points(
        vectors, per_document=20, types=[TYPES[i % len(TYPES)] for i in range(POINTS)]
    )
    for i in range(0, POINTS, 500):
        await writer.upsert(points[i : i + 500])
    await writer.close()
    store = _indexed_store()
    await store.start(EMBEDDER_DIM)
    yield store
    await store.close()


def _allowed(kind: str) -> list[int]:
    return [i for i in range(POINTS) if kind in TYPES[i % len(TYPES)]]


async def test_index_search_matches_exact_search(
    indexed: n4v.Neo4jVectorStore, vectors: np.ndarray
) -> None:
    assert await indexed.count() == POINTS
    shared = 0
    for q in QUERIES:
        query = near(vectors[q], 0.5, seed=q)
        hits = await indexed.search(query, 10, ChunkFilter())
        expected = dict(exact_top(vectors, query, 10))
        shared += len({h.chunk_id for h in hits} & set(expected))
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        for hit in hits:  # re-scored exactly, whatever the index approximates
            if hit.chunk_id in expected:
                assert hit.score == pytest.approx(expected[hit.chunk_id], abs=1e-4)
    assert shared / (10 * len(QUERIES)) >= MIN_OVERLAP


async def test_common_type_filter_over_fetches_k_hits(
    indexed: n4v.Neo4jVectorStore, vectors: np.ndarray
) -> None:
    allowed = _allowed("COMMON")
    shared = 0
    for q in QUERIES:
        query = near(vectors[q], 0.5, seed=q)
        hits = await indexed.search(query, 10, ChunkFilter(entity_types=("COMMON",)))
        assert len(hits) == 10
        assert all(int(h.chunk_id[4:]) in allowed for h in hits)
        expected = {c for c, _ in exact_top(vectors, query, 10, allowed)}
        shared += len({h.chunk_id for h in hits} & expected)
    assert shared / (10 * len(QUERIES)) >= MIN_OVERLAP


async def test_rare_type_filter_falls_back_to_an_exact_scan(
    indexed: n4v.Neo4jVectorStore, vectors: np.ndarray
) -> None:
    allowed = _allowed("RARE")
    assert len(allowed) < 30
    query = near(vectors[1], 0.3, seed=1)
    hits = await indexed.search(query, 30, ChunkFilter(entity_types=("RARE",)))
    assert [h.chunk_id for h in hits] == [c for c, _ in exact_top(vectors, query, 30, allowed)]


async def test_document_filter_is_exact_on_a_large_store(
    indexed: n4v.Neo4jVectorStore, vectors: np.ndarray
) -> None:
    query = [float(x) for x in vectors[0]]  # document 0 holds the best match
    docs = ("doc_0050", "doc_0099")
    hits = await indexed.search(query, 15, ChunkFilter(document_ids=docs))
    allowed = [i for i in range(POINTS) if i // 20 in (50, 99)]
    assert [h.chunk_id for h in hits] == [c for c, _ in exact_top(vectors, query, 15, allowed)]


async def test_graph_store_chunks_in_the_same_database_are_not_vectors(tmp_path: Path) -> None:
    store = VECTOR_STORES["neo4j"](tmp_path)
    await store.start(SMALL_DIM)
    user, password = _credentials()
    auth = None if password is None else (user, password)
    with neo4j.GraphDatabase.driver(_url(), auth=auth) as driver:
        driver.execute_query(
            "CREATE (:Chunk {id: $id, embedding: $e})", {"id": "chk_graph", "e": [1.0] * SMALL_DIM}
        )
        try:
            await store.upsert([VectorPoint("chk_graph", "doc_g", [1.0] * SMALL_DIM)])
            assert await store.count() == 1
            await store.delete_documents(["doc_g"])
            assert await store.count() == 0
            left = driver.execute_query("MATCH (c:Chunk {id: 'chk_graph'}) RETURN count(c) AS n")
            assert left.records[0]["n"] == 1
        finally:
            driver.execute_query("MATCH (c:Chunk {id: 'chk_graph'}) DELETE c")
            await store.close()


async def test_zero_vectors_are_refused(tmp_path: Path) -> None:
    store = VECTOR_STORES["neo4j"](tmp_path)
    await store.start(SMALL_DIM)
    try:
        with pytest.raises(BadInputError, match="zeros"):
            await store.upsert([VectorPoint(chunk_name(1), "doc_z", [0.0] * SMALL_DIM)])
        with pytest.raises(BadInputError, match="zeros"):
            await store.search([0.0] * SMALL_DIM, 3, ChunkFilter())
        assert await store.count() == 0
    finally:
        await store.close()


async def test_an_index_of_another_dimension_is_a_configuration_error(tmp_path: Path) -> None:
    first = VECTOR_STORES["neo4j"](tmp_path)
    await first.start(SMALL_DIM)  # an empty store: only the index says its dimension
    await first.close()
    second = VECTOR_STORES["neo4j"](tmp_path)
    with pytest.raises(ConfigurationError, match="dimension 8, not 384"):
        await second.start(EMBEDDER_DIM)


@pytest.mark.parametrize("url", ["http://127.0.0.1:7687", "bolt://", "bolt://host:7687/db"])
def test_urls_that_are_not_bolt_or_neo4j_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        n4v.Neo4jVectorStore(Neo4jConnection(url))


async def test_an_unreachable_server_is_unavailable_and_retryable() -> None:
    store = n4v.Neo4jVectorStore(
        Neo4jConnection("bolt://127.0.0.1:9", connect_timeout=2.0, retry_time=1.0)
    )
    with pytest.raises(UnavailableError) as caught:
        await store.start(SMALL_DIM)
    assert caught.value.retryable
    await store.close()
