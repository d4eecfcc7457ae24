"""Mutation root: ingestion and deletion."""

from __future__ import annotations

import strawberry

from graphql_schema.context import Info
from graphql_schema.inputs import DocumentInput
from graphql_schema.types import DeleteResult, IngestionJob


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Queue one document; returns its job at once.")
    async def ingest_document(self, info: Info, input: DocumentInput) -> IngestionJob:
        jobs = await info.context.services.ingestion.submit(
            [input.to_domain()], info.context.request_id
        )
        return IngestionJob.of(jobs[0])

    @strawberry.mutation(description="Queue many documents (all valid, or none queued).")
    async def ingest_documents(self, info: Info, inputs: list[DocumentInput]) -> list[IngestionJob]:
        jobs = await info.context.services.ingestion.submit(
            [i.to_domain() for i in inputs], info.context.request_id
        )
        return [IngestionJob.of(j) for j in jobs]

    @strawberry.mutation(
        description="Remove a document with its chunks, vectors, mentions and evidence, "
        "and the entities and relations no other document supports."
    )
    async def delete_document(self, info: Info, id: strawberry.ID) -> DeleteResult:
        deleted = await info.context.services.ingestion.delete_document(id)
        return DeleteResult(
            id=id,
            deleted=True,
            removed_entities=len(deleted.removed_entity_ids),
            removed_relations=len(deleted.removed_relation_ids),
        )
