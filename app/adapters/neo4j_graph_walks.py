"""The reads ``graph_walks`` needs, on Neo4j: one statement per hop (``WALK_LINKS``) and
one for the relations among a set of entities (``RELATIONS_AMONG``).

Kept apart from ``neo4j_graph_store`` so that module stays about one job; the store
builds one of these over its own read and record functions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import neo4j

from app.adapters import neo4j_cypher as cy
from app.adapters.graph_walks import Link
from app.domain.models import Entity, Relation

Row = Mapping[str, Any]
Read = Callable[[str, Row, str], Awaitable[list[neo4j.Record]]]
GetEntities = Callable[[Sequence[str]], Awaitable[list[Entity | None]]]


class Neo4jWalkReads:
    """``graph_walks.WalkReads`` over a store's ``read`` (query, params, action)."""

    def __init__(
        self, read: Read, get_entities: GetEntities, relation: Callable[[Row], Relation]
    ) -> None:
        self._read = read
        self._get_entities = get_entities
        self._relation = relation

    async def get_entities(self, ids: Sequence[str]) -> list[Entity | None]:
        return await self._get_entities(ids)

    async def links(self, frontier: Sequence[str], seen: Sequence[str], room: int) -> list[Link]:
        params = {"frontier": list(frontier), "seen": list(seen), "room": room}
        records = await self._read(cy.WALK_LINKS, params, "walking the graph")
        return [
            Link(entity_id=r["entity_id"], via=r["via"], relation=self._relation(r["item"]))
            for r in records
        ]

    async def relations_among(self, ids: Sequence[str]) -> list[Relation]:
        records = await self._read(cy.RELATIONS_AMONG, {"ids": list(ids)}, "reading relations")
        return [self._relation(r["item"]) for r in records]
