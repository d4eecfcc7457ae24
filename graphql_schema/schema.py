"""The schema: roots, extensions and error coding put together."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graphql_schema.errors import code_error
from graphql_schema.mutation import Mutation
from graphql_schema.observer import OperationObserver
from graphql_schema.query import Query
from graphql_schema.subscription import Subscription
from graphql_schema.types import Chunk, Document, Entity, IngestionJob, Relation


class KGSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            code_error(error)


def build_schema(extensions: list[Any] | None = None) -> KGSchema:
    return KGSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Document, Chunk, Entity, Relation, IngestionJob],
        extensions=[
            # Without these caches Strawberry parses and validates every request anew
            # (about 12x slower on small queries).
            # (the LRU caches are module-level, shared by these per-request instances).
            lambda: ParserCache(maxsize=1024),
            lambda: ValidationCache(maxsize=1024),
            OperationObserver,
            *(extensions or []),
        ],
        config=StrawberryConfig(disable_field_suggestions=True),
    )


schema = build_schema()
