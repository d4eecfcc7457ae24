"""The records of the knowledge graph, as plain frozen dataclasses.

Offsets are character offsets into the document's normalised text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    text: str
    source: str | None
    published_at: datetime | None
    ingested_at: datetime
    metadata: dict[str, Any] | None
    chunk_count: int


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    document_id: str
    index: int
    text: str
    start: int
    end: int
    token_count: int


@dataclass(frozen=True, slots=True)
class Entity:
    """A resolved entity. ``aliases`` (the other names it is mentioned by, sorted) and
    ``mention_count`` derive from its mentions."""

    id: str
    key: str
    name: str
    type: str
    aliases: tuple[str, ...] = ()
    mention_count: int = 0


@dataclass(frozen=True, slots=True)
class Mention:
    """One occurrence of an entity in a chunk."""

    entity_id: str
    document_id: str
    chunk_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Relation:
    """A typed, directed edge between two entities; ``confidence`` is the best evidence's."""

    id: str
    type: str
    source_id: str
    target_id: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Evidence:
    """The sentence that supports a relation, and where it stands."""

    relation_id: str
    document_id: str
    chunk_id: str
    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class DocumentBundle:
    """Everything one ingested document writes, stored in one transaction."""

    document: Document
    chunks: tuple[Chunk, ...]
    entities: tuple[Entity, ...]
    mentions: tuple[Mention, ...]
    relations: tuple[Relation, ...]
    evidence: tuple[Evidence, ...]


@dataclass(frozen=True, slots=True)
class DeletedDocument:
    """What a delete removed, so the vector store can follow."""

    document_id: str
    chunk_ids: tuple[str, ...]
    removed_entity_ids: tuple[str, ...]
    removed_relation_ids: tuple[str, ...]


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


class Stage(StrEnum):
    """The steps an ingestion reports, in order."""

    QUEUED = "QUEUED"
    CHUNKED = "CHUNKED"
    EXTRACTED = "EXTRACTED"
    RESOLVED = "RESOLVED"
    EMBEDDED = "EMBEDDED"
    STORED = "STORED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    @property
    def progress(self) -> float:
        return _STAGE_PROGRESS[self]

    @property
    def rank(self) -> int:
        """Position in the order above: a job's stage never goes back (COMPLETED and
        FAILED are final either way)."""
        return _STAGE_RANK[self]


_STAGE_RANK = {stage: i for i, stage in enumerate(Stage)}
_STAGE_PROGRESS = {
    Stage.QUEUED: 0.0,
    Stage.CHUNKED: 0.2,
    Stage.EXTRACTED: 0.45,
    Stage.RESOLVED: 0.55,
    Stage.EMBEDDED: 0.8,
    Stage.STORED: 0.95,
    Stage.COMPLETED: 1.0,
    Stage.FAILED: 1.0,
}


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """A document as a client sends it (already validated)."""

    title: str
    text: str
    source: str | None = None
    published_at: datetime | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class IngestionJob:
    id: str
    status: JobStatus
    stage: Stage
    progress: float
    document_id: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IngestionRequest:
    """What the API hands to a worker through the bus, keyed by document id."""

    job_id: str
    document_id: str
    input: DocumentInput
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class IngestionEvent:
    job_id: str
    status: JobStatus
    stage: Stage
    progress: float
    at: datetime
    message: str | None = None
    document_id: str | None = None


@dataclass(frozen=True, slots=True)
class GraphStats:
    documents: int
    chunks: int
    entities: int
    relations: int


# --- reading -------------------------------------------------------------------------


class Direction(StrEnum):
    OUT = "OUT"
    IN = "IN"
    BOTH = "BOTH"


@dataclass(frozen=True, slots=True)
class Subgraph:
    """Entities around one entity, nearest first, and the relations among them."""

    entities: tuple[Entity, ...]
    relations: tuple[Relation, ...]


@dataclass(frozen=True, slots=True)
class GraphPath:
    """A walk from ``entities[0]`` to ``entities[-1]``: ``relations[i]`` links
    ``entities[i]`` and ``entities[i + 1]`` in either direction."""

    entities: tuple[Entity, ...]
    relations: tuple[Relation, ...]

    @property
    def length(self) -> int:
        return len(self.relations)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Offset pagination: ``limit`` items after the first ``offset``."""

    offset: int = 0
    limit: int = 20


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int


@dataclass(frozen=True, slots=True)
class DocumentFilter:
    source: str | None = None
    title_contains: str | None = None
    ingested_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class EntityFilter:
    type: str | None = None
    name_contains: str | None = None


@dataclass(frozen=True, slots=True)
class RelationFilter:
    type: str | None = None
    source_id: str | None = None
    target_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChunkFilter:
    """Restricts a search to documents and to chunks mentioning entities of some types."""

    document_ids: tuple[str, ...] | None = None
    entity_types: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ChunkHit:
    """A scored chunk from a vector or keyword search."""

    chunk_id: str
    document_id: str
    score: float


@dataclass(frozen=True, slots=True)
class VectorPoint:
    chunk_id: str
    document_id: str
    vector: list[float]
    entity_types: tuple[str, ...] = field(default=())


# --- answers --------------------------------------------------------------------------


class AskMode(StrEnum):
    """How the passages for a question are found: NAIVE by vector similarity alone;
    LOCAL from the graph around the entities the question names; HYBRID both, fused
    with keyword search."""

    NAIVE = "NAIVE"
    LOCAL = "LOCAL"
    HYBRID = "HYBRID"


@dataclass(frozen=True, slots=True)
class Citation:
    """A cited passage; ``quote`` is an exact substring of the chunk's text."""

    document_id: str
    chunk_id: str
    quote: str
    score: float


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer with what it rests on: ``context`` is every passage handed to the
    generator, best first; ``entities`` the entity ids the answer used."""

    text: str
    citations: tuple[Citation, ...]
    entity_ids: tuple[str, ...]
    mode: AskMode
    model: str
    context: tuple[ChunkHit, ...]
    supported: bool = True
