"""Fixtures of the contract suites: every adapter of a port runs the same tests.

Adapters are listed by name in ``GRAPH_STORES`` and ``JOB_STORES``: a factory builds an
unstarted store on a test's private directory. Calling it again gives a second store on
the same data, which is how the suites test that data survives close and reopen. A
server-backed adapter (Neo4j) slots in as one more entry whose factory points at its
test database and wipes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.adapters.sqlite_job_store import SqliteJobStore
from app.ports.graph_store import GraphStore
from app.ports.job_store import JobStore
from tests.contract.bundles import all_bundles

GraphStoreFactory = Callable[[Path], GraphStore]
JobStoreFactory = Callable[[Path], JobStore]


def _sqlite_graph_store(root: Path) -> GraphStore:
    return SqliteGraphStore(root / "data" / "graph.sqlite3")


def _sqlite_job_store(root: Path) -> JobStore:
    return SqliteJobStore(root / "data" / "jobs.sqlite3")


GRAPH_STORES: dict[str, GraphStoreFactory] = {"sqlite": _sqlite_graph_store}
JOB_STORES: dict[str, JobStoreFactory] = {"sqlite": _sqlite_job_store}


@pytest.fixture(params=sorted(GRAPH_STORES))
def make_graph_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], GraphStore]:
    """Builds unstarted graph stores, all on the same data."""
    factory = GRAPH_STORES[request.param]
    return lambda: factory(tmp_path)


@pytest.fixture
async def graph_store(make_graph_store: Callable[[], GraphStore]) -> AsyncIterator[GraphStore]:
    """A started, empty graph store."""
    store = make_graph_store()
    await store.start()
    yield store
    await store.close()


@pytest.fixture
async def loaded_store(graph_store: GraphStore) -> GraphStore:
    """A graph store holding the three documents of ``bundles``."""
    for bundle in all_bundles():
        await graph_store.write_document(bundle)
    return graph_store


@pytest.fixture(params=sorted(JOB_STORES))
def make_job_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], JobStore]:
    """Builds unstarted job stores, all on the same data."""
    factory = JOB_STORES[request.param]
    return lambda: factory(tmp_path)


@pytest.fixture
async def job_store(make_job_store: Callable[[], JobStore]) -> AsyncIterator[JobStore]:
    store = make_job_store()
    await store.start()
    yield store
    await store.close()
