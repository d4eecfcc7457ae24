"""The committed SDL is what the code exports, and it keeps the names clients rely on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graphql_schema.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "graphql_schema" / "schema.graphql"


def test_committed_schema_is_current() -> None:
    exported = subprocess.run(
        [sys.executable, "-m", "app.cli", "export-schema", "--output", "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert SCHEMA_FILE.read_text(encoding="utf-8") == exported, (
        "graphql_schema/schema.graphql is stale: run `make schema` and commit it"
    )


def test_api_names_are_present() -> None:
    sdl = schema.as_str()
    for name in [
        "node(id: ID!): Node",
        "document(id: ID!): Document",
        "documents(first: Int = 20, after: String = null, filter: DocumentFilter = null): DocumentConnection!",
        "entities(first: Int = 20, after: String = null, filter: EntityFilter = null): EntityConnection!",
        "relations(first: Int = 20, after: String = null, filter: RelationFilter = null): RelationConnection!",
        "search(query: String!, k: Int = 10, mode: SearchMode = HYBRID, filter: SearchFilter = null): [SearchHit!]!",
        "ingestionJob(id: ID!): IngestionJob",
        "stats: GraphStats!",
        "ingestDocument(input: DocumentInput!): IngestionJob!",
        "ingestDocuments(inputs: [DocumentInput!]!): [IngestionJob!]!",
        "deleteDocument(id: ID!): DeleteResult!",
        "ingestionProgress(jobId: ID!): IngestionEvent!",
        "ingestionEvents: IngestionEvent!",
        "relations(first: Int = 20, after: String = null, direction: Direction = BOTH): RelationConnection!",
    ]:
        assert name in sdl, name
    for type_name in ["Document", "Chunk", "Entity", "Relation", "IngestionJob"]:
        assert f"type {type_name} implements Node" in sdl
