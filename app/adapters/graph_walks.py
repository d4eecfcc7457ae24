"""Breadth-first walks over the graph, shared by every graph store.

A store supplies three batched reads (``WalkReads``); the walks here turn them into
``GraphStore.neighborhood`` and ``GraphStore.shortest_path``. Ranking and tie-breaking
happen inside the store's ``links`` query (one per hop) and nowhere else, so every
store that implements ``links`` as documented answers exactly the same. A walk costs
one read per hop plus one or two to fetch what it returns, never one per entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from app.domain.errors import BadInputError, QueryTooComplexError
from app.domain.models import Entity, GraphPath, Relation, Subgraph
from app.ports.graph_store import PATH_SEARCH_MAX_ENTITIES


@dataclass(frozen=True, slots=True)
class Link:
    """How a walk first reaches ``entity_id``: by ``relation`` from ``via``."""

    entity_id: str
    via: str
    relation: Relation


class WalkReads(Protocol):
    async def get_entities(self, ids: Sequence[str]) -> list[Entity | None]: ...

    async def links(self, frontier: Sequence[str], seen: Sequence[str], room: int) -> list[Link]:
        """For every entity not in ``seen`` that a relation joins to an entity of
        ``frontier`` (either direction): its best such relation (highest confidence,
        then smallest relation id). Ordered by that relation's confidence descending,
        then entity id; at most ``room`` of them."""

    async def relations_among(self, ids: Sequence[str]) -> list[Relation]:
        """Relations with both ends in ``ids``, confidence descending, then id."""


async def neighborhood(reads: WalkReads, entity_id: str, depth: int, limit: int) -> Subgraph | None:
    """``GraphStore.neighborhood`` over ``reads``."""
    if depth < 0 or limit < 1:
        raise BadInputError(f"depth must be >= 0 and limit >= 1, got {depth} and {limit}")
    (seed,) = await reads.get_entities([entity_id])
    if seed is None:
        return None
    order = [entity_id]
    frontier = [entity_id]
    for _ in range(depth):
        room = limit - len(order)
        if room <= 0 or not frontier:
            break
        frontier = [link.entity_id for link in await reads.links(frontier, order, room)]
        order.extend(frontier)
    found = await reads.get_entities(order[1:])
    # An entity deleted since its hop was read is left out (its relations went with it).
    entities = (seed, *(e for e in found if e is not None))
    relations = await reads.relations_among([e.id for e in entities])
    return Subgraph(entities=entities, relations=tuple(relations))


async def shortest_path(
    reads: WalkReads, from_id: str, to_id: str, max_hops: int
) -> GraphPath | None:
    """``GraphStore.shortest_path`` over ``reads``."""
    if max_hops < 0:
        raise BadInputError(f"max_hops must be >= 0, got {max_hops}")
    ends = await reads.get_entities(list(dict.fromkeys([from_id, to_id])))
    if any(e is None for e in ends):
        return None
    if from_id == to_id:
        return GraphPath(entities=(ends[0],), relations=()) if ends[0] else None
    reached: dict[str, Link | None] = {from_id: None}
    frontier = [from_id]
    for _ in range(max_hops):
        room = PATH_SEARCH_MAX_ENTITIES - len(reached)
        links = await reads.links(frontier, list(reached), room + 1)
        if len(links) > room:
            raise QueryTooComplexError(
                f"a path search from {from_id} reaches more than {PATH_SEARCH_MAX_ENTITIES} "
                f"entities within {max_hops} hops; ask for fewer hops"
            )
        for link in links:
            reached[link.entity_id] = link
        if to_id in reached:
            return await _path_to(reads, reached, to_id)
        frontier = [link.entity_id for link in links]
        if not frontier:
            break
    return None


async def _path_to(
    reads: WalkReads, reached: dict[str, Link | None], to_id: str
) -> GraphPath | None:
    """The path that the links recorded in ``reached`` lead back along from ``to_id``."""
    relations: list[Relation] = []
    entity_ids = [to_id]
    link = reached[to_id]
    while link is not None:
        relations.append(link.relation)
        entity_ids.append(link.via)
        link = reached[link.via]
    entity_ids.reverse()
    relations.reverse()
    entities = await reads.get_entities(entity_ids)
    present = [e for e in entities if e is not None]
    if len(present) != len(entities):
        return None  # an entity on the way was deleted meanwhile: the path is gone
    return GraphPath(entities=tuple(present), relations=tuple(relations))
