"""Mutation root: ingestion and deletion (writers), API keys (admins)."""

from __future__ import annotations

import strawberry

from graphql_schema.context import Info
from graphql_schema.inputs import DocumentInput
from graphql_schema.permissions import IsAdmin, IsWriter
from graphql_schema.types import ApiKey, CreatedApiKey, DeleteResult, IngestionJob, Role


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[IsWriter], description="Queue one document; returns its job at once."
    )
    async def ingest_document(self, info: Info, input: DocumentInput) -> IngestionJob:
        jobs = await info.context.services.ingestion.submit(
            [input.to_domain()], info.context.request_id
        )
        return IngestionJob.of(jobs[0])

    @strawberry.mutation(
        permission_classes=[IsWriter],
        description="Queue many documents (all valid, or none queued).",
    )
    async def ingest_documents(self, info: Info, inputs: list[DocumentInput]) -> list[IngestionJob]:
        jobs = await info.context.services.ingestion.submit(
            [i.to_domain() for i in inputs], info.context.request_id
        )
        return [IngestionJob.of(j) for j in jobs]

    @strawberry.mutation(
        permission_classes=[IsWriter],
        description="Remove a document with its chunks, vectors, mentions and evidence, "
        "and the entities and relations no other document supports.",
    )
    async def delete_document(self, info: Info, id: strawberry.ID) -> DeleteResult:
        deleted = await info.context.services.ingestion.delete_document(id)
        return DeleteResult(
            id=id,
            deleted=True,
            removed_entities=len(deleted.removed_entity_ids),
            removed_relations=len(deleted.removed_relation_ids),
        )

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Create an API key for scripts (admins only). The result holds its "
        "secret this once: it is stored only as a salted hash and cannot be shown again.",
    )
    async def create_api_key(self, info: Info, name: str, role: Role) -> CreatedApiKey:
        key, secret = await info.context.services.api_keys.create(
            name, role, info.context.principal
        )
        return CreatedApiKey(key=ApiKey.of(key), secret=secret)

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Revoke an API key for good (admins only); the WebSockets it opened "
        "are closed within seconds.",
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> ApiKey:
        key = await info.context.services.api_keys.revoke(id, info.context.principal)
        return ApiKey.of(key)
