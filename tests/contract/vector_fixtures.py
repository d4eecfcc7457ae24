"""What the VectorStore contract suite runs against, and the data it feeds them.

``VECTOR_STORES`` maps a backend name to a factory that builds an (unstarted) store
whose state lives under a given directory; calling a factory twice with the same
directory opens the same store again, which is how the suite tests persistence. A
server backend (Neo4j, a Qdrant server) slots in as one more entry that derives a
collection or index name from the directory.

Vectors are deterministic: seeded numpy draws, normalised to unit length.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import neo4j
import numpy as np
import numpy.typing as npt
import pytest

from app.adapters import neo4j_vector_store as n4v
from app.adapters.neo4j_connection import Neo4jConnection
from app.adapters.qdrant_edge_vector_store import QdrantEdgeVectorStore
from app.adapters.qdrant_vector_store import QdrantVectorStore
from app.domain.models import VectorPoint
from app.ports.vector_store import VectorStore

EMBEDDER_DIM = 384  # all-MiniLM-L6-v2, the real embedder
SMALL_DIM = 8

StoreFactory = Callable[[Path], VectorStore]


def _qdrant_edge(root: Path) -> VectorStore:
    return QdrantEdgeVectorStore(root / "qdrant_edge")


def _qdrant_local(root: Path) -> VectorStore:
    return QdrantVectorStore(url=None, path=root / "qdrant_local")


NEO4J_URL_VAR = "KG_TEST_NEO4J_URL"
# Only the vector store's own label and schema are wiped, never the whole database.
_NEO4J_VECTOR_WIPE = (
    f"MATCH (v:{n4v.LABEL}) CALL (v) {{ DETACH DELETE v }} IN TRANSACTIONS OF 10000 ROWS",
    f"DROP INDEX {n4v.VECTOR_INDEX} IF EXISTS",  # the next test may use another dimension
)


def _neo4j(root: Path) -> VectorStore:
    """The store on the test server (``KG_TEST_NEO4J_URL``, with ``KG_TEST_NEO4J_USER``
    and ``KG_TEST_NEO4J_PASSWORD``; no password means auth is off). The first store of a
    test starts empty, a second one (same test) sees what the first wrote."""
    url = os.environ.get(NEO4J_URL_VAR)
    if not url:
        pytest.skip(f"{NEO4J_URL_VAR} is not set: no Neo4j server to run the neo4j vector store on")
    user = os.environ.get("KG_TEST_NEO4J_USER") or "neo4j"
    password = os.environ.get("KG_TEST_NEO4J_PASSWORD") or None
    marker = root / "neo4j-vectors-wiped"
    if not marker.exists():
        auth = None if password is None else (user, password)
        with neo4j.GraphDatabase.driver(url, auth=auth) as driver:
            for statement in _NEO4J_VECTOR_WIPE:
                with driver.session() as session:
                    session.run(statement).consume()
        marker.touch()
    return n4v.Neo4jVectorStore(Neo4jConnection(url, user, password, query_timeout=30.0))


VECTOR_STORES: dict[str, StoreFactory] = {
    "qdrant_edge": _qdrant_edge,
    "qdrant_local": _qdrant_local,
    "neo4j": _neo4j,
}

# Backends that keep their state in a local directory owned by one process.
EMBEDDED_STORES = ("qdrant_edge", "qdrant_local")


def unit_vectors(n: int, dim: int, seed: int) -> npt.NDArray[np.float64]:
    """``n`` random unit vectors (rows), the same for the same seed."""
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, dim))
    return np.asarray(m / np.linalg.norm(m, axis=1, keepdims=True))


def near(vector: npt.NDArray[np.float64], noise: float, seed: int) -> list[float]:
    """A unit vector close to ``vector`` (``noise`` is the size of the perturbation)."""
    rng = np.random.default_rng(seed)
    v = vector + noise * rng.standard_normal(vector.shape) / np.sqrt(vector.shape[0])
    return [float(x) for x in v / np.linalg.norm(v)]


def chunk_name(i: int) -> str:
    return f"chk_{i:06d}"


def doc_name(i: int) -> str:
    return f"doc_{i:04d}"


def make_points(
    vectors: npt.NDArray[np.float64],
    *,
    per_document: int = 10,
    types: Sequence[tuple[str, ...]] = ((),),
) -> list[VectorPoint]:
    """One point per row: chunk ``i`` belongs to document ``i // per_document`` and
    mentions the entity types ``types[i % len(types)]``."""
    return [
        VectorPoint(
            chunk_id=chunk_name(i),
            document_id=doc_name(i // per_document),
            vector=[float(x) for x in row],
            entity_types=types[i % len(types)],
        )
        for i, row in enumerate(vectors)
    ]


def exact_top(
    vectors: npt.NDArray[np.float64], query: Sequence[float], k: int, allowed: Sequence[int] = ()
) -> list[tuple[str, float]]:
    """The true top ``k`` (chunk id, cosine) by brute force, optionally among ``allowed`` rows."""
    scores = vectors @ np.asarray(query)
    rows = np.asarray(allowed if allowed else range(len(vectors)))
    best = rows[np.argsort(-scores[rows], kind="stable")[:k]]
    return [(chunk_name(int(i)), float(scores[i])) for i in best]


def clustered_vectors(
    n: int, dim: int, seed: int, *, clusters: int = 100
) -> npt.NDArray[np.float64]:
    """Unit vectors grouped around ``clusters`` centres, shaped like text embeddings
    (neighbours at cosine ~0.5, strangers near 0) rather than uniform noise, on which
    every nearest-neighbour index degrades to near-ties."""
    rng = np.random.default_rng(seed)
    centres = unit_vectors(clusters, dim, seed + 1)
    m = centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)) / np.sqrt(dim)
    return np.asarray(m / np.linalg.norm(m, axis=1, keepdims=True))
