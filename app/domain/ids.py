"""Deterministic ids.

Ids derive from content, so a replayed ingestion writes the same rows and points again
(idempotent writes) and the same text sent twice is one document. Every id carries a
prefix naming its kind, which is how ``node(id:)`` knows what to fetch.
"""

from __future__ import annotations

import hashlib
import uuid
from enum import StrEnum

_POINT_NAMESPACE = uuid.UUID("6f1c2a9e-3b7d-4e55-9a0c-5d2b8e7f4a11")


class Kind(StrEnum):
    DOCUMENT = "doc"
    CHUNK = "chk"
    ENTITY = "ent"
    RELATION = "rel"
    JOB = "job"


def _digest(*parts: str, size: int = 24) -> str:
    h = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return h[:size]


def document_id(title: str, text: str) -> str:
    """The id of a document: a hash of its normalised title and text."""
    return f"{Kind.DOCUMENT.value}_{_digest(title, text)}"


def chunk_id(doc_id: str, index: int) -> str:
    return f"{Kind.CHUNK.value}_{_digest(doc_id, str(index))}"


def entity_id(key: str) -> str:
    """The id of an entity from its canonical key (normalised name and type)."""
    return f"{Kind.ENTITY.value}_{_digest(key)}"


def relation_id(source_id: str, rel_type: str, target_id: str) -> str:
    return f"{Kind.RELATION.value}_{_digest(source_id, rel_type, target_id)}"


def job_id() -> str:
    return f"{Kind.JOB.value}_{uuid.uuid4().hex}"


def point_id(chunk: str) -> str:
    """A vector point id (a UUID, as Qdrant wants) derived from the chunk id."""
    return str(uuid.uuid5(_POINT_NAMESPACE, chunk))


def kind_of(any_id: str) -> Kind | None:
    prefix, sep, rest = any_id.partition("_")
    if not sep or not rest:
        return None
    try:
        return Kind(prefix)
    except ValueError:
        return None
