"""The composition root picks an adapter per port from the URLs, and refuses what this
build cannot serve with a message naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.adapters.kafka_event_bus import KafkaEventBus
from app.adapters.neo4j_graph_store import Neo4jGraphStore
from app.adapters.neo4j_vector_store import Neo4jVectorStore
from app.adapters.qdrant_edge_vector_store import QdrantEdgeVectorStore
from app.adapters.qdrant_vector_store import QdrantVectorStore
from app.adapters.redis_job_store import RedisJobStore
from app.adapters.sqlite_graph_store import SqliteGraphStore
from app.adapters.sqlite_job_store import SqliteJobStore
from app.config import load_settings
from app.container import build_container
from app.domain.errors import ConfigurationError
from app.observability.instrument import uninstrumented


def test_embedded_defaults(tmp_path: Path) -> None:
    c = build_container(load_settings(data_dir=tmp_path))
    assert isinstance(uninstrumented(c.graph), SqliteGraphStore)
    assert isinstance(uninstrumented(c.vectors), QdrantEdgeVectorStore)
    assert isinstance(uninstrumented(c.jobs), SqliteJobStore)


def test_urls_pick_adapters(tmp_path: Path) -> None:
    c = build_container(
        load_settings(
            data_dir=tmp_path,
            graph_url="bolt://127.0.0.1:7699",
            vector_url="local://",
            jobs_url="redis://127.0.0.1:6399/0",
            bus_url="kafka://127.0.0.1:9099",
        )
    )
    assert isinstance(uninstrumented(c.graph), Neo4jGraphStore)
    assert isinstance(uninstrumented(c.vectors), QdrantVectorStore)
    assert isinstance(uninstrumented(c.jobs), RedisJobStore)
    assert isinstance(c.bus, KafkaEventBus)


def test_neo4j_serves_graph_and_vectors(tmp_path: Path) -> None:
    c = build_container(
        load_settings(
            data_dir=tmp_path,
            graph_url="neo4j://127.0.0.1:7699",
            vector_url="neo4j://127.0.0.1:7699",
            neo4j={"user": "neo4j", "password": "not-a-real-password"},
        )
    )
    assert isinstance(uninstrumented(c.graph), Neo4jGraphStore)
    assert isinstance(uninstrumented(c.vectors), Neo4jVectorStore)


def test_unknown_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="KG_VECTOR_URL"):
        build_container(load_settings(data_dir=tmp_path, vector_url="pinecone://x"))
