"""Checks a DocumentBundle is self-consistent before a graph store writes it.

Every graph store runs these first, so a malformed bundle fails the same way on every
backend (a ``BadInputError`` naming the offending record) instead of as a driver's
constraint error half-way through a transaction.

The rules follow from how stores tie records to documents: a document supports an
entity through its mentions and a relation through its evidence. An entity without a
mention or a relation without evidence in its bundle would belong to no document, and no
delete could ever remove it, so both are refused.
"""

from __future__ import annotations

from app.domain.errors import BadInputError
from app.domain.models import DocumentBundle


def validate_bundle(bundle: DocumentBundle) -> None:
    """Raise ``BadInputError`` unless every record of the bundle points inside it."""
    doc_id = bundle.document.id
    if not doc_id:
        raise BadInputError("the bundle's document has no id")
    chunk_ids: set[str] = set()
    indexes: set[int] = set()
    for chunk in bundle.chunks:
        if chunk.document_id != doc_id:
            raise BadInputError(f"chunk {chunk.id} belongs to {chunk.document_id}, not {doc_id}")
        if chunk.id in chunk_ids or chunk.index in indexes:
            raise BadInputError(f"chunk {chunk.id} (index {chunk.index}) appears twice")
        if not 0 <= chunk.start <= chunk.end:
            raise BadInputError(f"chunk {chunk.id} has bad offsets {chunk.start}..{chunk.end}")
        chunk_ids.add(chunk.id)
        indexes.add(chunk.index)
    if bundle.document.chunk_count != len(chunk_ids):
        raise BadInputError(
            f"document {doc_id} says {bundle.document.chunk_count} chunks, "
            f"the bundle has {len(chunk_ids)}"
        )

    entity_ids = {entity.id for entity in bundle.entities}
    mentioned: set[str] = set()
    for mention in bundle.mentions:
        where = f"mention {mention.text!r} at {mention.start}"
        if mention.document_id != doc_id:
            raise BadInputError(f"{where} belongs to {mention.document_id}, not {doc_id}")
        if mention.chunk_id not in chunk_ids:
            raise BadInputError(f"{where} is in chunk {mention.chunk_id}, not in the bundle")
        if mention.entity_id not in entity_ids:
            raise BadInputError(f"{where} names entity {mention.entity_id}, not in the bundle")
        if not 0 <= mention.start <= mention.end:
            raise BadInputError(f"{where} has bad offsets {mention.start}..{mention.end}")
        mentioned.add(mention.entity_id)
    for entity in bundle.entities:
        if entity.id not in mentioned:
            raise BadInputError(f"entity {entity.id} ({entity.name!r}) has no mention")

    relation_ids = set()
    for relation in bundle.relations:
        for end in (relation.source_id, relation.target_id):
            if end not in entity_ids:
                raise BadInputError(f"relation {relation.id} ends at {end}, not in the bundle")
        relation_ids.add(relation.id)
    evidenced: set[str] = set()
    for evidence in bundle.evidence:
        where = f"evidence of {evidence.relation_id} in {evidence.chunk_id}"
        if evidence.document_id != doc_id:
            raise BadInputError(f"{where} belongs to {evidence.document_id}, not {doc_id}")
        if evidence.chunk_id not in chunk_ids:
            raise BadInputError(f"{where}: the chunk is not in the bundle")
        if evidence.relation_id not in relation_ids:
            raise BadInputError(f"{where}: the relation is not in the bundle")
        evidenced.add(evidence.relation_id)
    for relation in bundle.relations:
        if relation.id not in evidenced:
            raise BadInputError(f"relation {relation.id} ({relation.type}) has no evidence")
