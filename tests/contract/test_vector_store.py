"""The VectorStore contract: every adapter of the port passes the same suite.

Runs against the real engines (Qdrant Edge in-process, qdrant-client local mode); the
backends are listed in ``vector_fixtures.VECTOR_STORES``.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from app.adapters.qdrant_edge_vector_store import QdrantEdgeVectorStore
from app.adapters.qdrant_vector_store import QdrantVectorStore
from app.domain.errors import (
    BadInputError,
    ConfigurationError,
    ConflictError,
    UnavailableError,
)
from app.domain.models import ChunkFilter, VectorPoint
from app.ports.vector_store import FILTER_DOCUMENTS, FILTER_ENTITY_TYPES, VectorStore
from tests.contract.vector_fixtures import (
    EMBEDDED_STORES,
    EMBEDDER_DIM,
    SMALL_DIM,
    VECTOR_STORES,
    chunk_name,
    clustered_vectors,
    doc_name,
    exact_top,
    make_points,
    near,
    unit_vectors,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NO_FILTER = ChunkFilter()
TYPES: tuple[tuple[str, ...], ...] = ((), ("PERSON",), ("ORG",), ("PERSON", "ORG"), ("GPE",))
OpenStore = Callable[..., Awaitable[VectorStore]]


@pytest.fixture(params=sorted(VECTOR_STORES))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def open_store(backend: str, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens (and later closes) a store of ``backend`` on this test's directory; a second
    call opens the same store again, as a restarted process would."""
    opened: list[VectorStore] = []

    async def _open(dimension: int = EMBEDDER_DIM) -> VectorStore:
        store = VECTOR_STORES[backend](tmp_path)
        opened.append(store)
        await store.start(dimension)
        return store

    yield _open
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def vector_store(open_store: OpenStore) -> VectorStore:
    return await open_store()


# --- search ------------------------------------------------------------------------


async def test_empty_store_counts_zero_and_finds_nothing(vector_store: VectorStore) -> None:
    assert await vector_store.count() == 0
    query = near(unit_vectors(1, EMBEDDER_DIM, 1)[0], 0.0, 0)
    assert await vector_store.search(query, 10, NO_FILTER) == []


async def test_declares_both_filters(vector_store: VectorStore) -> None:
    assert {FILTER_DOCUMENTS, FILTER_ENTITY_TYPES} <= vector_store.capabilities


@pytest.mark.parametrize("dim", [EMBEDDER_DIM, SMALL_DIM])
async def test_a_stored_vector_finds_itself_first(open_store: OpenStore, dim: int) -> None:
    store = await open_store(dim)
    vectors = unit_vectors(300, dim, seed=11)
    await store.upsert(make_points(vectors))
    for i in (0, 7, 150, 299):
        hits = await store.search([float(x) for x in vectors[i]], 5, NO_FILTER)
        assert hits[0].chunk_id == chunk_name(i)
        assert hits[0].document_id == doc_name(i // 10)
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("dim", [EMBEDDER_DIM, SMALL_DIM])
async def test_results_are_the_exact_top_k_best_first(open_store: OpenStore, dim: int) -> None:
    store = await open_store(dim)
    vectors = unit_vectors(300, dim, seed=12)
    await store.upsert(make_points(vectors))
    for q in range(5):
        query = near(vectors[q * 59], 0.8, seed=q)
        hits = await store.search(query, 10, NO_FILTER)
        expected = exact_top(vectors, query, 10)
        assert [h.chunk_id for h in hits] == [c for c, _ in expected]
        assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-4)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)


async def test_k_larger_than_the_store_returns_every_point(vector_store: VectorStore) -> None:
    vectors = unit_vectors(7, EMBEDDER_DIM, seed=13)
    await vector_store.upsert(make_points(vectors))
    hits = await vector_store.search(near(vectors[0], 0.5, 1), 50, NO_FILTER)
    assert sorted(h.chunk_id for h in hits) == [chunk_name(i) for i in range(7)]


@pytest.mark.parametrize("k", [0, -3])
async def test_k_not_positive_returns_nothing(vector_store: VectorStore, k: int) -> None:
    vectors = unit_vectors(5, EMBEDDER_DIM, seed=14)
    await vector_store.upsert(make_points(vectors))
    assert await vector_store.search([float(x) for x in vectors[0]], k, NO_FILTER) == []


async def test_scores_are_cosine_similarities(vector_store: VectorStore) -> None:
    dim = EMBEDDER_DIM
    a, b = [0.0] * dim, [0.0] * dim
    a[0], b[0], b[1] = 3.0, 1.0, 1.0  # not unit length: cosine must normalise
    opposite = [-x for x in a]
    await vector_store.upsert(
        [
            VectorPoint("chk_a", "doc_x", a),
            VectorPoint("chk_b", "doc_x", b),
            VectorPoint("chk_o", "doc_x", opposite),
        ]
    )
    hits = await vector_store.search(a, 3, NO_FILTER)
    assert [(h.chunk_id, round(h.score, 4)) for h in hits] == [
        ("chk_a", 1.0),
        ("chk_b", round(1 / math.sqrt(2), 4)),
        ("chk_o", -1.0),
    ]


# --- filters -----------------------------------------------------------------------


@pytest.fixture
async def filled(vector_store: VectorStore) -> tuple[VectorStore, np.ndarray]:
    """300 chunks in 30 documents; chunk i mentions TYPES[i % 5]."""
    vectors = unit_vectors(300, EMBEDDER_DIM, seed=21)
    await vector_store.upsert(make_points(vectors, per_document=10, types=TYPES))
    return vector_store, vectors


async def test_filter_by_documents(filled: tuple[VectorStore, np.ndarray]) -> None:
    store, vectors = filled
    query = near(vectors[0], 0.3, 1)
    docs = (doc_name(3), doc_name(27))
    hits = await store.search(query, 50, ChunkFilter(document_ids=docs))
    allowed = [i for i in range(300) if i // 10 in (3, 27)]
    assert [h.chunk_id for h in hits] == [c for c, _ in exact_top(vectors, query, 50, allowed)]
    assert {h.document_id for h in hits} == set(docs)
    assert len(hits) == 20


async def test_filter_is_applied_before_the_top_k(filled: tuple[VectorStore, np.ndarray]) -> None:
    store, vectors = filled
    query = [float(x) for x in vectors[0]]  # doc 0 holds the best match by far
    hits = await store.search(query, 5, ChunkFilter(document_ids=(doc_name(29),)))
    assert len(hits) == 5
    allowed = list(range(290, 300))
    assert [h.chunk_id for h in hits] == [c for c, _ in exact_top(vectors, query, 5, allowed)]


async def test_filter_by_entity_types_matches_any(filled: tuple[VectorStore, np.ndarray]) -> None:
    store, vectors = filled
    query = near(vectors[5], 0.5, 2)
    hits = await store.search(query, 300, ChunkFilter(entity_types=("ORG",)))
    assert {int(h.chunk_id[4:]) % 5 for h in hits} == {2, 3}
    assert len(hits) == 120
    hits = await store.search(query, 300, ChunkFilter(entity_types=("PERSON", "GPE")))
    assert {int(h.chunk_id[4:]) % 5 for h in hits} == {1, 3, 4}
    assert len(hits) == 180
    hits = await store.search(query, 10, ChunkFilter(entity_types=("UNKNOWN",)))
    assert hits == []


async def test_documents_and_entity_types_together_are_and(
    filled: tuple[VectorStore, np.ndarray],
) -> None:
    store, vectors = filled
    query = near(vectors[100], 0.5, 3)
    filter = ChunkFilter(document_ids=(doc_name(10), doc_name(11)), entity_types=("GPE",))
    hits = await store.search(query, 100, filter)
    assert sorted(h.chunk_id for h in hits) == [chunk_name(i) for i in (104, 109, 114, 119)]
    allowed = [104, 109, 114, 119]
    assert [h.chunk_id for h in hits] == [c for c, _ in exact_top(vectors, query, 4, allowed)]


async def test_empty_filter_lists_match_nothing(filled: tuple[VectorStore, np.ndarray]) -> None:
    store, vectors = filled
    query = [float(x) for x in vectors[0]]
    assert await store.search(query, 10, ChunkFilter(document_ids=())) == []
    assert await store.search(query, 10, ChunkFilter(entity_types=())) == []


# --- writes ------------------------------------------------------------------------


async def test_count_follows_upserts(vector_store: VectorStore) -> None:
    vectors = unit_vectors(700, EMBEDDER_DIM, seed=31)  # more than one engine batch
    await vector_store.upsert(make_points(vectors[:600]))
    assert await vector_store.count() == 600
    await vector_store.upsert(make_points(vectors)[600:])
    assert await vector_store.count() == 700
    await vector_store.upsert([])
    assert await vector_store.count() == 700


async def test_upsert_is_idempotent(vector_store: VectorStore) -> None:
    points = make_points(unit_vectors(100, EMBEDDER_DIM, seed=32), types=TYPES)
    await vector_store.upsert(points)
    await vector_store.upsert(points)
    await vector_store.upsert(points[:10])
    assert await vector_store.count() == 100


async def test_upsert_replaces_vector_and_payload(vector_store: VectorStore) -> None:
    vectors = unit_vectors(101, EMBEDDER_DIM, seed=33)
    await vector_store.upsert(make_points(vectors[:100]))
    moved = [float(x) for x in vectors[100]]
    await vector_store.upsert([VectorPoint(chunk_name(0), "doc_moved", moved, ("NEW",))])
    assert await vector_store.count() == 100
    hits = await vector_store.search(moved, 1, NO_FILTER)
    assert (hits[0].chunk_id, hits[0].document_id) == (chunk_name(0), "doc_moved")
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    only_new = await vector_store.search(moved, 10, ChunkFilter(entity_types=("NEW",)))
    assert [h.chunk_id for h in only_new] == [chunk_name(0)]
    old_doc = await vector_store.search(moved, 100, ChunkFilter(document_ids=(doc_name(0),)))
    assert chunk_name(0) not in {h.chunk_id for h in old_doc}
    assert len(old_doc) == 9


async def test_delete_documents_removes_all_their_points(
    filled: tuple[VectorStore, np.ndarray],
) -> None:
    store, vectors = filled
    gone = (doc_name(0), doc_name(7), "doc_never_stored")
    await store.delete_documents(gone)
    assert await store.count() == 280
    hits = await store.search([float(x) for x in vectors[0]], 300, NO_FILTER)
    assert len(hits) == 280
    assert not {h.document_id for h in hits} & set(gone)
    assert await store.search(near(vectors[70], 0.1, 1), 5, ChunkFilter(document_ids=gone)) == []
    await store.delete_documents([])
    await store.delete_documents(gone)  # again: nothing left to remove
    assert await store.count() == 280


# --- lifecycle ---------------------------------------------------------------------


async def test_data_survives_close_and_reopen(open_store: OpenStore) -> None:
    vectors = unit_vectors(300, EMBEDDER_DIM, seed=41)
    store = await open_store()
    await store.upsert(make_points(vectors, types=TYPES))
    await store.delete_documents([doc_name(2)])
    query = near(vectors[50], 0.5, 1)
    before = await store.search(query, 10, ChunkFilter(entity_types=("ORG",)))
    await store.close()

    reopened = await open_store()
    assert await reopened.count() == 290
    after = await reopened.search(query, 10, ChunkFilter(entity_types=("ORG",)))
    assert [h.chunk_id for h in after] == [h.chunk_id for h in before]
    assert [h.score for h in after] == pytest.approx([h.score for h in before], abs=1e-5)
    assert await reopened.search(query, 5, ChunkFilter(document_ids=(doc_name(2),))) == []


async def test_start_is_idempotent_for_the_same_dimension(vector_store: VectorStore) -> None:
    await vector_store.upsert(make_points(unit_vectors(3, EMBEDDER_DIM, seed=42)))
    await vector_store.start(EMBEDDER_DIM)
    assert await vector_store.count() == 3
    with pytest.raises(ConfigurationError):
        await vector_store.start(SMALL_DIM)


async def test_reopening_with_another_dimension_is_a_configuration_error(
    open_store: OpenStore,
) -> None:
    store = await open_store(EMBEDDER_DIM)
    await store.upsert(make_points(unit_vectors(3, EMBEDDER_DIM, seed=43)))
    await store.close()
    with pytest.raises(ConfigurationError, match="dimension"):
        await open_store(SMALL_DIM)
    again = await open_store(EMBEDDER_DIM)  # the failed start released everything
    assert await again.count() == 3


@pytest.mark.parametrize("dimension", [0, -1])
async def test_start_refuses_a_non_positive_dimension(
    backend: str, tmp_path: Path, dimension: int
) -> None:
    store = VECTOR_STORES[backend](tmp_path)
    with pytest.raises(ConfigurationError):
        await store.start(dimension)


async def test_calls_before_start_or_after_close_are_unavailable(
    backend: str, tmp_path: Path
) -> None:
    store = VECTOR_STORES[backend](tmp_path)
    with pytest.raises(UnavailableError):
        await store.count()
    with pytest.raises(UnavailableError):
        await store.upsert(make_points(unit_vectors(1, SMALL_DIM, seed=1)))
    await store.start(SMALL_DIM)
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(UnavailableError):
        await store.search([1.0] * SMALL_DIM, 3, NO_FILTER)
    with pytest.raises(UnavailableError):
        await store.upsert(make_points(unit_vectors(1, SMALL_DIM, seed=1)))


# --- bad input ---------------------------------------------------------------------


async def test_vectors_of_the_wrong_dimension_are_refused(vector_store: VectorStore) -> None:
    short = make_points(unit_vectors(2, SMALL_DIM, seed=51))
    with pytest.raises(BadInputError, match="dimensions"):
        await vector_store.upsert(short)
    with pytest.raises(BadInputError, match="dimensions"):
        await vector_store.search([0.1] * (EMBEDDER_DIM + 1), 3, NO_FILTER)
    assert await vector_store.count() == 0


@pytest.mark.parametrize(
    "bad", [math.nan, math.inf, -math.inf, 1e200]
)  # 1e200: its square overflows
async def test_non_finite_vectors_are_refused(vector_store: VectorStore, bad: float) -> None:
    vector = [0.1] * EMBEDDER_DIM
    vector[5] = bad
    with pytest.raises(BadInputError):
        await vector_store.upsert([VectorPoint("chk_bad", "doc_bad", vector)])
    with pytest.raises(BadInputError):
        await vector_store.search(vector, 3, NO_FILTER)


# --- one process owns an embedded store --------------------------------------------

_OPEN_IN_CHILD = """
import asyncio, sys
from pathlib import Path
from app.domain.errors import ConflictError
from tests.contract.vector_fixtures import VECTOR_STORES

async def main() -> None:
    store = VECTOR_STORES[sys.argv[1]](Path(sys.argv[2]))
    try:
        await store.start(int(sys.argv[3]))
    except ConflictError as exc:
        print("CONFLICT", exc.message)
        return
    print("OPENED")
    await store.close()

asyncio.run(main())
"""


async def _open_in_child(backend: str, root: Path) -> str:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _OPEN_IN_CHILD,
        backend,
        str(root),
        str(SMALL_DIM),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=120)
    assert child.returncode == 0, err.decode()
    return out.decode()


@pytest.mark.parametrize("backend", EMBEDDED_STORES)
async def test_a_second_open_of_the_same_path_conflicts(backend: str, tmp_path: Path) -> None:
    first = VECTOR_STORES[backend](tmp_path)
    await first.start(SMALL_DIM)
    second = VECTOR_STORES[backend](tmp_path)
    try:
        with pytest.raises(ConflictError) as caught:
            await second.start(SMALL_DIM)
        assert str(tmp_path) in caught.value.message
        assert (await _open_in_child(backend, tmp_path)).startswith("CONFLICT")
    finally:
        await first.close()
    await second.start(SMALL_DIM)  # the owner is gone: the path is free again
    await second.close()
    assert (await _open_in_child(backend, tmp_path)).startswith("OPENED")


# --- adapter construction ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [(None, None), ("http://localhost:6333", Path("x")), ("ftp://qdrant:6333", None)],
)
def test_qdrant_store_needs_one_http_url_or_one_path(url: str | None, path: Path | None) -> None:
    with pytest.raises(ConfigurationError):
        QdrantVectorStore(url=url, path=path)


def test_edge_store_refuses_a_collection_name_that_is_not_a_file_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        QdrantEdgeVectorStore(tmp_path, collection="../escape")


async def test_an_unreachable_qdrant_server_is_unavailable_and_retryable() -> None:
    store = QdrantVectorStore(url="http://127.0.0.1:9", path=None)  # discard port: refused
    with pytest.raises(UnavailableError) as caught:
        await store.start(SMALL_DIM)
    assert caught.value.retryable
    await store.close()


# --- congruence: HNSW in Edge against exact search in local mode -------------------

CONGRUENCE_POINTS = 2_000
CONGRUENCE_QUERIES = 20
MIN_OVERLAP = 0.95


async def test_edge_hnsw_and_local_exact_search_agree(tmp_path: Path) -> None:
    vectors = clustered_vectors(CONGRUENCE_POINTS, EMBEDDER_DIM, seed=61)
    points = make_points(vectors, per_document=20, types=TYPES)
    queries = [near(vectors[i], 0.5, seed=i) for i in range(0, CONGRUENCE_POINTS, 100)]
    # Small index thresholds so these 2,000 points are served by HNSW graphs.
    edge = QdrantEdgeVectorStore(
        tmp_path / "edge", indexing_threshold_kb=1_200, max_segment_size_kb=4_000
    )
    local = QdrantVectorStore(url=None, path=tmp_path / "local")
    await edge.start(EMBEDDER_DIM)
    await local.start(EMBEDDER_DIM)
    try:
        for i in range(0, CONGRUENCE_POINTS, 250):  # batches, as ingestion writes them
            await edge.upsert(points[i : i + 250])
            await local.upsert(points[i : i + 250])
        status = await edge.index_status()
        assert status.points == CONGRUENCE_POINTS
        assert status.indexed_vectors >= CONGRUENCE_POINTS * 0.8
        shared = 0
        for query in queries:
            from_edge = await edge.search(query, 10, NO_FILTER)
            from_local = await local.search(query, 10, NO_FILTER)
            assert [h.chunk_id for h in from_local] == [c for c, _ in exact_top(vectors, query, 10)]
            shared += len({h.chunk_id for h in from_edge} & {h.chunk_id for h in from_local})
            assert from_edge[0].score == pytest.approx(from_local[0].score, abs=1e-4)
        assert shared / (10 * CONGRUENCE_QUERIES) >= MIN_OVERLAP
    finally:
        await edge.close()
        await local.close()


async def test_an_edge_store_written_before_quantization_gets_its_int8_copies_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qdrant_edge as qe

    vectors = clustered_vectors(CONGRUENCE_POINTS, EMBEDDER_DIM, seed=67)
    points = make_points(vectors, per_document=20, types=TYPES)
    queries = [near(vectors[i], 0.5, seed=i) for i in range(0, CONGRUENCE_POINTS, 100)]
    sizes = {"indexing_threshold_kb": 1_200, "max_segment_size_kb": 4_000}

    def unquantized(self: QdrantEdgeVectorStore, dimension: int) -> object:
        return qe.EdgeConfig(
            vectors=qe.EdgeVectorParams(size=dimension, distance=qe.Distance.Cosine),
            optimizers=self._optimizers,
        )

    with monkeypatch.context() as patched:  # what an older server wrote
        patched.setattr(QdrantEdgeVectorStore, "_config", unquantized)
        old = QdrantEdgeVectorStore(tmp_path, **sizes)
        await old.start(EMBEDDER_DIM)
        for i in range(0, CONGRUENCE_POINTS, 250):
            await old.upsert(points[i : i + 250])
        await old.close()
    collection = tmp_path / "chunks"
    assert not list(collection.glob("segments/*/vector_storage/quantized.data"))

    store = QdrantEdgeVectorStore(tmp_path, **sizes)
    await store.start(EMBEDDER_DIM)
    try:
        config = json.loads((collection / "edge_config.json").read_text())
        assert config["quantization_config"]["scalar"]["type"] == "int8"
        # The rebuilt HNSW segment holds its int8 copy (the replaced one's files may
        # linger until the engine removes them, so only presence is checked).
        assert list(collection.glob("segments/*/vector_storage/quantized.data"))
        assert (await store.index_status()).points == CONGRUENCE_POINTS
        shared = 0
        for query in queries:
            found = await store.search(query, 10, NO_FILTER)
            exact = exact_top(vectors, query, 10)
            shared += len({h.chunk_id for h in found} & {c for c, _ in exact})
            assert found[0].score == pytest.approx(exact[0][1], abs=1e-4)  # rescored: float
        assert shared / (10 * CONGRUENCE_QUERIES) >= MIN_OVERLAP
    finally:
        await store.close()
