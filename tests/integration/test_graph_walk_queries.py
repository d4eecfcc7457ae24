"""``neighborhood`` and ``path`` through the GraphQL schema, executed in process on the
real wiring (``build_container``) over an embedded SQLite graph holding the contract
bundles: the answers, and a coded error for every bad argument."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.config import load_settings
from app.container import Container, build_container
from app.security.authenticate import LOCAL_PRINCIPAL
from app.server import services_of
from graphql_schema.context import Context
from graphql_schema.schema import schema
from tests.contract.bundles import ADA, BABBAGE, ENGINE, LONDON, TURING, all_bundles, relation_id

NEIGHBORHOOD = """
    query($id: ID!, $depth: Int, $limit: Int) {
      neighborhood(entityId: $id, depth: $depth, limit: $limit) {
        nodes { id name }
        edges { id type source { id } target { id } }
      }
    }
"""
PATH = """
    query($from: ID!, $to: ID!, $hops: Int) {
      path(fromId: $from, toId: $to, maxHops: $hops) {
        length nodes { id } edges { id source { name } }
      }
    }
"""
UNKNOWN = "ent_000000000000000000000000"
DOCUMENT_ID = "doc_000000000000000000000000"


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    c = build_container(load_settings(data_dir=tmp_path, graph_url="sqlite://"))
    await c.graph.start()
    for bundle in all_bundles():
        await c.graph.write_document(bundle)
    yield c
    await c.graph.close()


async def run(c: Container, document: str, **variables: Any) -> tuple[Any, list[Any]]:
    services = services_of(c)
    result = await schema.execute(
        document,
        variable_values=variables,
        context_value=Context(services=services, request_id="walks", principal=LOCAL_PRINCIPAL),
    )
    return result.data, list(result.errors or [])


async def test_neighborhood_answers_with_defaults(container: Container) -> None:
    data, errors = await run(container, NEIGHBORHOOD, id=ADA.id)
    assert errors == []
    hood = data["neighborhood"]
    assert [n["id"] for n in hood["nodes"]] == [ADA.id, BABBAGE.id, LONDON.id]
    worked_with = hood["edges"][0]
    assert worked_with["id"] == relation_id(ADA, "WORKED_WITH", BABBAGE)
    assert (worked_with["source"]["id"], worked_with["target"]["id"]) == (ADA.id, BABBAGE.id)


async def test_path_answers_and_is_null_when_there_is_none(container: Container) -> None:
    data, errors = await run(container, PATH, **{"from": ADA.id, "to": ENGINE.id})
    assert errors == []
    assert data["path"]["length"] == 2
    assert [n["id"] for n in data["path"]["nodes"]] == [ADA.id, BABBAGE.id, ENGINE.id]
    assert [e["source"]["name"] for e in data["path"]["edges"]] == [
        "Ada Lovelace",
        "Charles Babbage",
    ]
    for target, hops in ((TURING.id, 6), (ENGINE.id, 1)):
        data, errors = await run(container, PATH, **{"from": ADA.id, "to": target, "hops": hops})
        assert errors == []
        assert data == {"path": None}


BAD_NEIGHBORHOODS: dict[str, tuple[dict[str, Any], str, str]] = {
    "depth 0": ({"depth": 0}, "BAD_USER_INPUT", "depth must be at least 1"),
    "depth -1": ({"depth": -1}, "BAD_USER_INPUT", "depth must be at least 1"),
    "depth over the limit": ({"depth": 4}, "BAD_USER_INPUT", "KG_LIMITS__MAX_DEPTH"),
    "limit 0": ({"limit": 0}, "BAD_USER_INPUT", "limit must be at least 1"),
    "limit over the limit": ({"limit": 501}, "BAD_USER_INPUT", "KG_LIMITS__MAX_NEIGHBORHOOD"),
    "a document id": ({"id": DOCUMENT_ID}, "BAD_USER_INPUT", "entityId must be an entity id"),
    "not an id": ({"id": "Ada Lovelace"}, "BAD_USER_INPUT", "entityId must be an entity id"),
    "unknown entity": ({"id": UNKNOWN}, "NOT_FOUND", UNKNOWN),
}


@pytest.mark.parametrize("case", list(BAD_NEIGHBORHOODS))
async def test_bad_neighborhood(container: Container, case: str) -> None:
    variables, code, message = BAD_NEIGHBORHOODS[case]
    data, errors = await run(container, NEIGHBORHOOD, **{"id": ADA.id, **variables})
    assert data is None  # neighborhood is non-null: the error nulls the whole answer
    assert [(e.extensions or {}).get("code") for e in errors] == [code]
    assert message in errors[0].message


BAD_PATHS: dict[str, tuple[dict[str, Any], str, str]] = {
    "maxHops 0": ({"hops": 0}, "BAD_USER_INPUT", "maxHops must be at least 1"),
    "maxHops -1": ({"hops": -1}, "BAD_USER_INPUT", "maxHops must be at least 1"),
    "maxHops over the limit": ({"hops": 7}, "BAD_USER_INPUT", "KG_LIMITS__MAX_PATH_HOPS"),
    "from a document id": ({"from": DOCUMENT_ID}, "BAD_USER_INPUT", "fromId must be"),
    "to a relation id": (
        {"to": relation_id(ADA, "WORKED_WITH", BABBAGE)},
        "BAD_USER_INPUT",
        "toId must be",
    ),
    "unknown from": ({"from": UNKNOWN}, "NOT_FOUND", "fromId"),
    "unknown to": ({"to": UNKNOWN}, "NOT_FOUND", "toId"),
}


@pytest.mark.parametrize("case", list(BAD_PATHS))
async def test_bad_path(container: Container, case: str) -> None:
    variables, code, message = BAD_PATHS[case]
    data, errors = await run(container, PATH, **{"from": ADA.id, "to": LONDON.id, **variables})
    assert data == {"path": None}
    assert [(e.extensions or {}).get("code") for e in errors] == [code]
    assert message in errors[0].message
