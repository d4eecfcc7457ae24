"""The object types of the graph. Each wraps a domain record; edges go through
DataLoaders so that nested lists are batched."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types.nodes import SelectedField

from app.domain import auth, models
from app.domain.errors import NotFoundError
from graphql_schema.context import Info
from graphql_schema.enums import AskMode, Direction, JobStatus
from graphql_schema.relay import Connection, connection


@strawberry.interface(description="An object with a global id, fetchable through node(id:).")
class Node:
    id: strawberry.ID


@strawberry.type(description="A document as ingested: its normalised text and metadata.")
class Document(Node):
    title: str
    source: str | None
    text: str
    published_at: datetime | None
    ingested_at: datetime
    metadata: JSON | None
    chunk_count: int

    @classmethod
    def of(cls, d: models.Document) -> Document:
        return cls(
            id=strawberry.ID(d.id),
            title=d.title,
            source=d.source,
            text=d.text,
            published_at=d.published_at,
            ingested_at=d.ingested_at,
            metadata=cast(JSON, d.metadata),
            chunk_count=d.chunk_count,
        )

    @strawberry.field(description="The passages the document was cut into, in order.")
    async def chunks(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Chunk]:
        page = info.context.page(first, after)
        result = await info.context.loaders.chunks_by_document(page).load(self.id)
        return connection(result, page.offset, Chunk.of)

    @strawberry.field(description="Entities mentioned in the document, most mentioned first.")
    async def entities(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Entity]:
        page = info.context.page(first, after)
        result = await info.context.loaders.entities_by_document(page).load(self.id)
        return connection(result, page.offset, Entity.of)


@strawberry.type(description="A passage of a document, the unit of search.")
class Chunk(Node):
    index: int
    text: str
    start: int = strawberry.field(description="Offset of the first character in the document.")
    end: int = strawberry.field(description="Offset after the last character in the document.")
    document_id: strawberry.Private[str]

    @classmethod
    def of(cls, c: models.Chunk) -> Chunk:
        return cls(
            id=strawberry.ID(c.id),
            index=c.index,
            text=c.text,
            start=c.start,
            end=c.end,
            document_id=c.document_id,
        )

    @strawberry.field
    async def document(self, info: Info) -> Document:
        return await load_document(info, self.document_id)

    @strawberry.field(description="Entities mentioned in this chunk.")
    async def entities(self, info: Info) -> list[Entity]:
        return [Entity.of(e) for e in await info.context.loaders.entities_by_chunk.load(self.id)]


@strawberry.type(description="A person, organisation, place... resolved across documents.")
class Entity(Node):
    name: str
    type: str
    aliases: list[str]
    mention_count: int

    @classmethod
    def of(cls, e: models.Entity) -> Entity:
        return cls(
            id=strawberry.ID(e.id),
            name=e.name,
            type=e.type,
            aliases=list(e.aliases),
            mention_count=e.mention_count,
        )

    @strawberry.field(description="Documents that mention the entity, newest first.")
    async def documents(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> Connection[Document]:
        page = info.context.page(first, after)
        result = await info.context.loaders.documents_by_entity(page).load(self.id)
        return connection(result, page.offset, Document.of)

    @strawberry.field(description="Relations of the entity, most confident first.")
    async def relations(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        direction: Direction | None = models.Direction.BOTH,
    ) -> Connection[Relation]:
        page = info.context.page(first, after)
        loader = info.context.loaders.relations_by_entity(
            page, models.Direction(direction or models.Direction.BOTH)
        )
        return connection(await loader.load(self.id), page.offset, Relation.of)


@strawberry.type(description="A directed, typed edge between two entities, with its evidence.")
class Relation(Node):
    type: str
    confidence: float
    source_id: strawberry.Private[str]
    target_id: strawberry.Private[str]

    @classmethod
    def of(cls, r: models.Relation) -> Relation:
        return cls(
            id=strawberry.ID(r.id),
            type=r.type,
            confidence=r.confidence,
            source_id=r.source_id,
            target_id=r.target_id,
        )

    @strawberry.field
    async def source(self, info: Info) -> Entity:
        return await load_entity(info, self.source_id)

    @strawberry.field
    async def target(self, info: Info) -> Entity:
        return await load_entity(info, self.target_id)

    @strawberry.field(description="The sentences the relation was read from, best first.")
    async def evidence(self, info: Info) -> list[Evidence]:
        found = await info.context.loaders.evidence_by_relation.load(self.id)
        return [Evidence.of(e) for e in found]


@strawberry.type
class InChunk:
    """Base of the types that point into a chunk (evidence, citations): the chunk and
    its document, through the loaders."""

    chunk_id: strawberry.Private[str]
    document_id: strawberry.Private[str]

    @strawberry.field
    async def chunk(self, info: Info) -> Chunk:
        return await load_chunk(info, self.chunk_id)

    @strawberry.field
    async def document(self, info: Info) -> Document:
        return await load_document(info, self.document_id)


@strawberry.type(description="A sentence supporting a relation, and where it stands.")
class Evidence(InChunk):
    text: str

    @classmethod
    def of(cls, e: models.Evidence) -> Evidence:
        return cls(text=e.text, chunk_id=e.chunk_id, document_id=e.document_id)


@strawberry.type(description="A chunk found by search, with its score (see the search mode).")
class SearchHit:
    """Every field is plain data, resolved without awaiting: ``search_hits`` reads the
    chunks and, when the query selects ``document``, their documents, side by side. A
    per-hit async resolver made graphql-core run a task per hit."""

    score: float
    chunk: Chunk
    text: str
    found_document: strawberry.Private[models.Document | None]

    @strawberry.field
    def document(self) -> Document:
        if self.found_document is None:
            raise _gone("document", self.chunk.document_id)
        return Document.of(self.found_document)


async def search_hits(info: Info, hits: Sequence[models.ChunkHit]) -> list[SearchHit]:
    """Hits with their chunks and, if selected, their documents, batched and read
    together; a hit whose chunk was deleted a moment ago is left out."""
    loaders = info.context.loaders
    chunks_read = loaders.chunk_by_id.load_many([h.chunk_id for h in hits])
    documents: dict[str, models.Document] = {}
    if _selects(info, "document"):
        doc_ids = list(dict.fromkeys(h.document_id for h in hits))
        chunks, docs = await asyncio.gather(chunks_read, loaders.document_by_id.load_many(doc_ids))
        documents = {d.id: d for d in docs if d is not None}
    else:
        chunks = await chunks_read
    return [
        SearchHit(
            score=h.score,
            chunk=Chunk.of(c),
            text=c.text,
            found_document=documents.get(c.document_id),
        )
        for h, c in zip(hits, chunks, strict=True)
        if c is not None
    ]


def _selects(info: Info, name: str) -> bool:
    """Whether the current field's selection names field ``name`` on its own objects,
    directly or through fragments (directives are not evaluated: a skipped field counts,
    which costs a read, never a missing value)."""
    pending = [item for field in info.selected_fields for item in field.selections]
    while pending:
        item = pending.pop()
        if isinstance(item, SelectedField):
            if item.name == name:
                return True
        else:  # a fragment: its selections are on the same objects
            pending.extend(item.selections)
    return False


@strawberry.type(description="A passage an answer rests on; quote is an exact substring of it.")
class Citation(InChunk):
    quote: str
    score: float = strawberry.field(description="The retrieval score of the cited passage.")


@strawberry.type(description="An answer to a question, with what it rests on.")
class Answer:
    answer: str
    citations: list[Citation]
    mode: AskMode
    model: str = strawberry.field(description="What generated it: extractive, or the LLM.")
    supported: bool = strawberry.field(
        description="False when nothing retrieved answers the question (the answer says so)."
    )
    entity_ids: strawberry.Private[tuple[str, ...]]
    context_hits: strawberry.Private[tuple[models.ChunkHit, ...]]

    @classmethod
    def of(cls, a: models.Answer) -> Answer:
        return cls(
            answer=a.text,
            citations=[
                Citation(
                    quote=c.quote, score=c.score, chunk_id=c.chunk_id, document_id=c.document_id
                )
                for c in a.citations
            ],
            mode=a.mode,
            model=a.model,
            supported=a.supported,
            entity_ids=a.entity_ids,
            context_hits=a.context,
        )

    @strawberry.field(description="The entities the answer used.")
    async def entities(self, info: Info) -> list[Entity]:
        found = await info.context.loaders.entity_by_id.load_many(list(self.entity_ids))
        return [Entity.of(e) for e in found if e is not None]

    @strawberry.field(description="The passages handed to the generator, best first.")
    async def context(self, info: Info) -> list[SearchHit]:
        return await search_hits(info, self.context_hits)


@strawberry.type(description="A piece of a streamed answer; the last has done and the answer.")
class AnswerChunk:
    delta: str
    done: bool
    answer: Answer | None = None


@strawberry.type(description="An ingestion of one document, from QUEUED to COMPLETED or FAILED.")
class IngestionJob(Node):
    status: JobStatus
    stage: str | None
    progress: float
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    document_id: strawberry.Private[str | None]

    @classmethod
    def of(cls, j: models.IngestionJob) -> IngestionJob:
        return cls(
            id=strawberry.ID(j.id),
            status=j.status,
            stage=j.stage.value,
            progress=j.progress,
            error=j.error,
            created_at=j.created_at,
            finished_at=j.finished_at,
            document_id=j.document_id,
        )

    @strawberry.field(description="The document, once it is stored.")
    async def document(self, info: Info) -> Document | None:
        if self.document_id is None:
            return None
        found = await info.context.loaders.document_by_id.load(self.document_id)
        return Document.of(found) if found else None


@strawberry.type(description="A step of an ingestion job, as it happens.")
class IngestionEvent:
    job_id: strawberry.ID
    status: JobStatus
    stage: str
    progress: float
    message: str | None
    at: datetime
    document_id: strawberry.ID | None

    @classmethod
    def of(cls, e: models.IngestionEvent) -> IngestionEvent:
        return cls(
            job_id=strawberry.ID(e.job_id),
            status=e.status,
            stage=e.stage.value,
            progress=e.progress,
            message=e.message,
            at=e.at,
            document_id=strawberry.ID(e.document_id) if e.document_id else None,
        )


@strawberry.type(description="How much the graph holds.")
class GraphStats:
    documents: int
    chunks: int
    entities: int
    relations: int


@strawberry.type(
    description="An entity and the entities around it, nearest first, with the "
    "relations among them."
)
class Subgraph:
    nodes: list[Entity]
    edges: list[Relation] = strawberry.field(
        description="Relations with both ends among the nodes, most confident first."
    )

    @classmethod
    def of(cls, s: models.Subgraph) -> Subgraph:
        return cls(
            nodes=[Entity.of(e) for e in s.entities], edges=[Relation.of(r) for r in s.relations]
        )


@strawberry.type(
    description="A shortest path: edges[i] joins nodes[i] and nodes[i + 1], in either direction."
)
class GraphPath:
    nodes: list[Entity]
    edges: list[Relation]
    length: int = strawberry.field(description="The number of edges.")

    @classmethod
    def of(cls, p: models.GraphPath) -> GraphPath:
        return cls(
            nodes=[Entity.of(e) for e in p.entities],
            edges=[Relation.of(r) for r in p.relations],
            length=p.length,
        )


@strawberry.type
class DeleteResult:
    id: strawberry.ID
    deleted: bool
    removed_entities: int = strawberry.field(
        description="Entities no other document mentions, removed with it."
    )
    removed_relations: int = strawberry.field(
        description="Relations no other document supports, removed with it."
    )


async def load_document(info: Info, doc_id: str) -> Document:
    found = await info.context.loaders.document_by_id.load(doc_id)
    if found is None:
        raise _gone("document", doc_id)
    return Document.of(found)


async def load_chunk(info: Info, chunk_id: str) -> Chunk:
    found = await info.context.loaders.chunk_by_id.load(chunk_id)
    if found is None:
        raise _gone("chunk", chunk_id)
    return Chunk.of(found)


async def load_entity(info: Info, entity_id: str) -> Entity:
    found = await info.context.loaders.entity_by_id.load(entity_id)
    if found is None:
        raise _gone("entity", entity_id)
    return Entity.of(found)


def _gone(kind: str, any_id: str) -> Exception:
    return NotFoundError(f"the {kind} {any_id!r} was removed while this query ran")


# --- API keys (admins only: see graphql_schema/permissions.py) ---------------------------

strawberry.enum(
    auth.Role, name="Role", description="Cumulative: a writer may read, an admin write."
)
Role = auth.Role


@strawberry.type(description="An API key for scripts, as admins see it: never its secret.")
class ApiKey:
    id: strawberry.ID
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    active: bool

    @classmethod
    def of(cls, k: auth.ApiKey) -> ApiKey:
        return cls(
            id=strawberry.ID(k.id),
            name=k.name,
            role=k.role,
            created_at=k.created_at,
            created_by=k.created_by,
            revoked_at=k.revoked_at,
            active=k.active,
        )


@strawberry.type(description="A new API key and its secret, shown this once: store it now.")
class CreatedApiKey:
    key: ApiKey
    secret: str = strawberry.field(
        description="Send it as 'Authorization: Bearer <secret>' or 'X-API-Key: <secret>'."
    )
