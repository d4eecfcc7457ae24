"""Fixtures of the contract suites: every adapter of a port runs the same tests.

Adapters are listed by name in ``GRAPH_STORES`` and ``JOB_STORES``: a factory builds an
unstarted store on a test's private directory. Calling it again gives a second store on
the same data, which is how the suites test that data survives close and reopen. A
server-backed adapter (Neo4j) slots in as one more entry whose factory points at its
test database and wipes it.

Neo4j joins the graph stores when ``KG_TEST_NEO4J_URL`` names a running server (with
``KG_TEST_NEO4J_USER`` and ``KG_TEST_NEO4J_PASSWORD``; no password means auth is off);
without it the neo4j cases are skipped, saying why. Community edition has one database,
so the first store of each test wipes the graph store's labels before the test runs.

Redis joins the job stores when ``KG_TEST_REDIS_URL`` names a running server (e.g.
``redis://127.0.0.1:6390/0``); without it the redis cases are skipped, saying why. Each
test gets its own random key namespace, and the keys are deleted when the session ends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import neo4j
import pytest

from app.adapters.neo4j_connection import Neo4jConnection
from app.adapters.neo4j_graph_store import Neo4jGraphStore
from app.adapters.redis_job_store import RedisJobStore
from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.adapters.sqlite_job_store import SqliteJobStore
from app.ports.graph_store import GraphStore
from app.ports.job_store import JobStore
from tests.contract.bundles import all_bundles
from tests.support.redis_keys import delete_keys

GraphStoreFactory = Callable[[Path], GraphStore]
JobStoreFactory = Callable[[Path], JobStore]


def _sqlite_graph_store(root: Path) -> GraphStore:
    return SqliteGraphStore(root / "data" / "graph.sqlite3")


def _sqlite_job_store(root: Path) -> JobStore:
    return SqliteJobStore(root / "data" / "jobs.sqlite3")


NEO4J_URL_VAR = "KG_TEST_NEO4J_URL"
# Every label the graph store writes; only these are wiped, never the whole database.
_NEO4J_WIPE = (
    "MATCH (n) WHERE n:Document OR n:Chunk OR n:Entity OR n:Relation "
    "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS"
)


def _neo4j_graph_store(root: Path) -> GraphStore:
    """A store on the test server; the first one of a test starts from an empty graph,
    a second one (same test) sees what the first wrote."""
    url = os.environ.get(NEO4J_URL_VAR)
    if not url:
        pytest.skip(f"{NEO4J_URL_VAR} is not set: no Neo4j server to run the neo4j graph store on")
    user = os.environ.get("KG_TEST_NEO4J_USER") or "neo4j"
    password = os.environ.get("KG_TEST_NEO4J_PASSWORD") or None
    marker = root / "neo4j-wiped"
    if not marker.exists():
        auth = None if password is None else (user, password)
        with neo4j.GraphDatabase.driver(url, auth=auth) as driver, driver.session() as session:
            session.run(_NEO4J_WIPE).consume()
        marker.touch()
    return Neo4jGraphStore(Neo4jConnection(url, user, password, query_timeout=30.0))


REDIS_URL_VAR = "KG_TEST_REDIS_URL"
_redis_namespaces: set[str] = set()  # handed out this session, deleted at its end


def _redis_job_store(root: Path) -> JobStore:
    """A store on the test server, in a namespace kept under ``root`` so a second call
    (same test) sees the same jobs and no other test does."""
    url = os.environ.get(REDIS_URL_VAR)
    if not url:
        pytest.skip(f"{REDIS_URL_VAR} is not set: no Redis server to run the redis job store on")
    marker = root / "redis-namespace"
    if not marker.exists():
        marker.write_text(f"kgtest-{uuid.uuid4().hex[:16]}")
    namespace = marker.read_text()
    _redis_namespaces.add(namespace)
    return RedisJobStore(url, namespace=namespace)


GRAPH_STORES: dict[str, GraphStoreFactory] = {
    "sqlite": _sqlite_graph_store,
    "neo4j": _neo4j_graph_store,
}
JOB_STORES: dict[str, JobStoreFactory] = {
    "sqlite": _sqlite_job_store,
    "redis": _redis_job_store,
}


@pytest.fixture(scope="session", autouse=True)
async def _redis_test_keys_deleted() -> AsyncIterator[None]:
    """Unfinished jobs never expire, so the session removes the namespaces it used."""
    yield
    url = os.environ.get(REDIS_URL_VAR)
    if not url or not _redis_namespaces:
        return
    await delete_keys(url, *(f"{namespace}:*" for namespace in sorted(_redis_namespaces)))
    _redis_namespaces.clear()


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
