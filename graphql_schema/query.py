"""Query root: thin resolvers over the catalog and search services."""

from __future__ import annotations

from collections.abc import Sequence

import strawberry

from app.domain import models
from app.domain.ids import Kind, kind_of
from app.services import search as search_service
from graphql_schema.context import Info
from graphql_schema.enums import AskMode, SearchMode
from graphql_schema.inputs import DocumentFilter, EntityFilter, RelationFilter, SearchFilter
from graphql_schema.permissions import IsAdmin, IsReader
from graphql_schema.relay import Connection, connection
from graphql_schema.types import (
    Answer,
    ApiKey,
    Chunk,
    Document,
    Entity,
    GraphPath,
    GraphStats,
    IngestionJob,
    Node,
    Relation,
    SearchHit,
    Subgraph,
    search_hits,
)


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsReader], description="Any object by its id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        loaders = info.context.loaders
        match kind_of(id):
            case Kind.DOCUMENT:
                return await document_of(info, id)
            case Kind.CHUNK:
                c = await loaders.chunk_by_id.load(id)
                return Chunk.of(c) if c else None
            case Kind.ENTITY:
                return await entity_of(info, id)
            case Kind.RELATION:
                r = await loaders.relation_by_id.load(id)
                return Relation.of(r) if r else None
            case Kind.JOB:
                return await job_of(info, id)
            case _:
                return None

    @strawberry.field(permission_classes=[IsReader])
    async def document(self, info: Info, id: strawberry.ID) -> Document | None:
        return await document_of(info, id)

    @strawberry.field(permission_classes=[IsReader], description="Documents, newest first.")
    async def documents(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: DocumentFilter | None = None,
    ) -> Connection[Document]:
        page = info.context.page(first, after)
        f = filter.to_domain() if filter else models.DocumentFilter()
        result = await info.context.services.catalog.list_documents(f, page)
        return connection(result, page.offset, Document.of)

    @strawberry.field(permission_classes=[IsReader])
    async def entity(self, info: Info, id: strawberry.ID) -> Entity | None:
        return await entity_of(info, id)

    @strawberry.field(permission_classes=[IsReader], description="Entities, most mentioned first.")
    async def entities(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: EntityFilter | None = None,
    ) -> Connection[Entity]:
        page = info.context.page(first, after)
        f = filter.to_domain() if filter else models.EntityFilter()
        result = await info.context.services.catalog.list_entities(f, page)
        return connection(result, page.offset, Entity.of)

    @strawberry.field(permission_classes=[IsReader], description="Relations, most confident first.")
    async def relations(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: RelationFilter | None = None,
    ) -> Connection[Relation]:
        page = info.context.page(first, after)
        f = filter.to_domain() if filter else models.RelationFilter()
        result = await info.context.services.catalog.list_relations(f, page)
        return connection(result, page.offset, Relation.of)

    @strawberry.field(
        permission_classes=[IsReader], description="Chunks that match the query, best first."
    )
    async def search(
        self,
        info: Info,
        query: str,
        k: int | None = 10,
        mode: SearchMode | None = search_service.SearchMode.HYBRID,
        filter: SearchFilter | None = None,
    ) -> list[SearchHit]:
        f = filter.to_domain() if filter else models.ChunkFilter()
        hits = await info.context.services.search.search(
            query,
            10 if k is None else k,
            search_service.SearchMode(mode or search_service.SearchMode.HYBRID),
            f,
        )
        return await search_hits(info, hits)

    @strawberry.field(
        permission_classes=[IsReader],
        description="An answer to the question from the ingested documents, with citations "
        "(k: passages handed to the generator).",
    )
    async def ask(
        self,
        info: Info,
        question: str,
        k: int | None = 5,
        mode: AskMode | None = models.AskMode.HYBRID,
    ) -> Answer:
        found = await info.context.services.answers.ask(
            question, 5 if k is None else k, models.AskMode(mode or models.AskMode.HYBRID)
        )
        return Answer.of(found)

    @strawberry.field(
        permission_classes=[IsReader],
        description="An entity and those within depth hops of it (relations in either "
        "direction), nearest first, at most limit in all.",
    )
    async def neighborhood(
        self, info: Info, entity_id: strawberry.ID, depth: int | None = 1, limit: int | None = 50
    ) -> Subgraph:
        found = await info.context.services.catalog.neighborhood(
            entity_id, 1 if depth is None else depth, 50 if limit is None else limit
        )
        _prime_entities(info, found.entities)
        return Subgraph.of(found)

    @strawberry.field(
        permission_classes=[IsReader],
        description="A shortest path between two entities (relations in either direction), "
        "at most maxHops long; null if there is none.",
    )
    async def path(
        self, info: Info, from_id: strawberry.ID, to_id: strawberry.ID, max_hops: int | None = 4
    ) -> GraphPath | None:
        found = await info.context.services.catalog.path(
            from_id, to_id, 4 if max_hops is None else max_hops
        )
        if found is None:
            return None
        _prime_entities(info, found.entities)
        return GraphPath.of(found)

    @strawberry.field(permission_classes=[IsReader])
    async def ingestion_job(self, info: Info, id: strawberry.ID) -> IngestionJob | None:
        return await job_of(info, id)

    @strawberry.field(permission_classes=[IsReader])
    async def stats(self, info: Info) -> GraphStats:
        s = await info.context.services.catalog.stats()
        return GraphStats(
            documents=s.documents, chunks=s.chunks, entities=s.entities, relations=s.relations
        )

    @strawberry.field(
        permission_classes=[IsAdmin],
        description="API keys for scripts, oldest first, never their secrets (admins only).",
    )
    async def api_keys(self, info: Info, include_revoked: bool = False) -> list[ApiKey]:
        keys = await info.context.services.api_keys.list(include_revoked)
        return [ApiKey.of(k) for k in keys]


async def document_of(info: Info, doc_id: str) -> Document | None:
    d = await info.context.loaders.document_by_id.load(doc_id)
    return Document.of(d) if d else None


async def entity_of(info: Info, entity_id: str) -> Entity | None:
    e = await info.context.loaders.entity_by_id.load(entity_id)
    return Entity.of(e) if e else None


async def job_of(info: Info, job_id: str) -> IngestionJob | None:
    j = await info.context.loaders.job_by_id.load(job_id)
    return IngestionJob.of(j) if j else None


def _prime_entities(info: Info, entities: Sequence[models.Entity]) -> None:
    """Edges' source and target are among the nodes: serve them without a read."""
    info.context.loaders.entity_by_id.prime_many({e.id: e for e in entities})
