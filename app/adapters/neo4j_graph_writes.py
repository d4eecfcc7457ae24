"""The transaction functions of the Neo4j graph store's writes.

``write_bundle`` and ``delete_document`` run inside a managed write transaction (the
store passes them to ``execute_write``, which re-runs them on a transient failure), so
they only read and write through ``tx``. A write mirrors the SQLite store: it replaces
what an earlier write of the same document stored (chunks, mentions, evidence), deletes
the entities and relations nothing supports any more, and recomputes the derived fields
(entity mention counts and aliases, relation confidence) of everything it touched. The
document keeps its first ``ingested_at``; entity names are the first writer's.

Neo4j isolates transactions at read-committed, so the derived fields are guarded by
locks (see the write statements in ``neo4j_cypher``): a writer first writes the
document node, so writers of one document queue there; then it locks every entity and
relation it will recompute, in id order, before reading them. A second writer touching
the same entity waits, then counts the first one's mentions.

The last statement of each (``FINISH``) stores the search words of the entities whose
name or aliases it may have changed, folded here from what ``REFRESH`` returned (the
entities are locked, so nothing changes them in between), and raises the graph version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import neo4j

from app.adapters import neo4j_cypher as cy
from app.adapters.neo4j_support import encode_optional_json, encode_optional_time, encode_time
from app.adapters.search_words import index_text, words
from app.domain.errors import BackendError, UnavailableError
from app.domain.models import DeletedDocument, DocumentBundle

Row = Mapping[str, Any]
Tx = neo4j.AsyncManagedTransaction

_LOCK_ATTEMPTS = 5  # runs of a locking statement before a write gives up (retryably)


async def write_bundle(tx: Tx, plan: WritePlan) -> None:
    """Store a validated bundle (see the module docstring)."""
    await _until_present(tx, cy.UPSERT_DOCUMENT, plan.document)
    old = await _footprint(tx, plan.document_id)
    entities = sorted(old.entities | plan.entity_ids)
    relations = sorted(old.relations | plan.relation_ids)
    await _merge_and_lock(tx, entities, relations, plan.entities, plan.relations)
    kept = set(old.chunks)
    (written,) = await _run(
        tx,
        cy.WRITE_CONTENT,
        {
            "id": plan.document_id,
            "keep": [c["id"] for c in plan.chunks if c["id"] in kept],
            "updated": [c for c in plan.chunks if c["id"] in kept],
            "created": [c for c in plan.chunks if c["id"] not in kept],
            "mentions": plan.mentions,
            "evidence": plan.evidence,
        },
    )
    if (written["mentions"], written["evidence"]) != (len(plan.mentions), len(plan.evidence)):
        # Every end was locked and checked before; a miss here is a bug, not a race.
        raise BackendError(
            f"writing {plan.document_id}: {written['mentions']} of {len(plan.mentions)} "
            f"mentions and {written['evidence']} of {len(plan.evidence)} evidence rows "
            "found their ends"
        )
    _, _, named = await _collect_and_refresh(tx, entities, relations)
    await _finish(tx, named)


async def delete_document(tx: Tx, document_id: str) -> DeletedDocument | None:
    """Remove a document and what only it supported; ``None`` if it is not there."""
    locked = await _run(tx, cy.LOCK_DOCUMENT, {"id": document_id})
    if not locked or not locked[0]["present"]:  # absent, or deleted as we waited
        return None
    old = await _footprint(tx, document_id)
    entities, relations = sorted(old.entities), sorted(old.relations)
    await _merge_and_lock(tx, entities, relations, [], [])
    await _run(tx, cy.DELETE_CONTENT, {"id": document_id})
    removed_entities, removed_relations, named = await _collect_and_refresh(tx, entities, relations)
    await _finish(tx, named)
    return DeletedDocument(
        document_id=document_id,
        chunk_ids=old.chunks,
        removed_entity_ids=tuple(sorted(removed_entities)),
        removed_relation_ids=tuple(sorted(removed_relations)),
    )


@dataclass(frozen=True, slots=True)
class _Footprint:
    chunks: tuple[str, ...]  # in index order
    entities: set[str]
    relations: set[str]


@dataclass(frozen=True, slots=True)
class WritePlan:
    """A bundle as statement parameters, built (and its metadata encoded) before the
    transaction, so a bad value fails without touching the server. Entities and
    relations are deduplicated (the first of an id wins) and sorted by id, the order
    their locks are taken in."""

    document_id: str
    document: dict[str, Any]
    chunks: list[dict[str, Any]]
    entities: list[dict[str, Any]]
    mentions: list[dict[str, Any]]
    relations: list[dict[str, Any]]
    evidence: list[dict[str, Any]]

    @property
    def entity_ids(self) -> set[str]:
        return {e["id"] for e in self.entities}

    @property
    def relation_ids(self) -> set[str]:
        return {r["id"] for r in self.relations}

    @classmethod
    def of(cls, bundle: DocumentBundle) -> WritePlan:
        doc = bundle.document
        entities = {e.id: e for e in reversed(bundle.entities)}
        relations = {r.id: r for r in reversed(bundle.relations)}
        return cls(
            document_id=doc.id,
            document={  # not asdict: it would deep-copy the metadata before it is checked
                "id": doc.id,
                "title": doc.title,
                "title_folded": doc.title.casefold(),
                "text": doc.text,
                "source": doc.source,
                "chunk_count": doc.chunk_count,
                "published_at": encode_optional_time(doc.published_at),
                "ingested_at": encode_time(doc.ingested_at),
                "metadata": encode_optional_json(doc.metadata, f"metadata of {doc.id}"),
            },
            chunks=[{**asdict(c), "words": index_text(c.text)} for c in bundle.chunks],
            entities=[
                {**asdict(entities[i]), "name_folded": entities[i].name.casefold()}
                for i in sorted(entities)
            ],
            mentions=[asdict(m) for m in bundle.mentions],
            relations=[asdict(relations[i]) for i in sorted(relations)],
            evidence=[asdict(v) for v in bundle.evidence],
        )


async def _run(tx: Tx, query: str, params: Row) -> list[neo4j.Record]:
    result = await tx.run(query, dict(params))
    return [record async for record in result]


async def _until_present(tx: Tx, query: str, params: Row) -> None:
    """Run a statement that locks the document node until the node it locked exists
    (a concurrent delete may have removed it while we waited for the lock)."""
    for _ in range(_LOCK_ATTEMPTS):
        (record,) = await _run(tx, query, params)
        if record["present"]:
            return
    raise UnavailableError("the document kept being deleted while writing it; try again")


async def _merge_and_lock(
    tx: Tx,
    lock_entities: list[str],
    lock_relations: list[str],
    entities: list[dict[str, Any]],
    relations: list[dict[str, Any]],
) -> None:
    """Lock what the transaction recomputes and merge the bundle's entities and
    relations, again while a concurrent delete removed some of them meanwhile."""
    params = {
        "lock_entities": lock_entities,
        "lock_relations": lock_relations,
        "entities": entities,
        "relations": relations,
    }
    for _ in range(_LOCK_ATTEMPTS):
        (record,) = await _run(tx, cy.MERGE_AND_LOCK, params)
        if not record["missing_entities"] and not record["missing_relations"]:
            return
    raise UnavailableError("entities kept being deleted while writing a document; try again")


async def _footprint(tx: Tx, document_id: str) -> _Footprint:
    records = await _run(tx, cy.FOOTPRINT, {"id": document_id})
    if not records:
        return _Footprint(chunks=(), entities=set(), relations=set())
    r = records[0]
    return _Footprint(
        chunks=tuple(r["chunks"]), entities=set(r["entities"]), relations=set(r["relations"])
    )


async def _collect_and_refresh(
    tx: Tx, entities: list[str], relations: list[str]
) -> tuple[list[str], list[str], list[Row]]:
    """Delete the orphans among the touched entities and relations, recompute the
    derived fields of the rest; return the removed ids, and the surviving entities'
    ids, names and aliases."""
    if not entities and not relations:
        return [], [], []
    (r,) = await _run(tx, cy.COLLECT_ORPHANS, {"entities": entities, "relations": relations})
    removed_entities, removed_relations = list(r["entity_ids"]), list(r["relation_ids"])
    gone_e, gone_r = set(removed_entities), set(removed_relations)
    (refreshed,) = await _run(
        tx,
        cy.REFRESH,
        {
            "entities": [i for i in entities if i not in gone_e],
            "relations": [i for i in relations if i not in gone_r],
        },
    )
    return removed_entities, removed_relations, list(refreshed["named"])


async def _finish(tx: Tx, named: list[Row]) -> None:
    """Store the search words of ``named`` entities and raise the graph version: the
    last statement of the transaction."""
    rows = [{"id": e["id"], "words": entity_words(e["name"], e["aliases"])} for e in named]
    await _run(tx, cy.FINISH, {"words": rows})


def entity_words(name: str, aliases: Sequence[str] | None) -> str:
    """What the entity words index holds: the distinct folded words of the name and the
    aliases (``search_words``), space-separated, for a whitespace analyser."""
    found = (word for text in (name, *(aliases or ())) for word in words(text))
    return " ".join(dict.fromkeys(found))
