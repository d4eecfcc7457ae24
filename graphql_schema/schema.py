"""The schema: roots, extensions and error coding put together."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
import structlog
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from app.domain.errors import BadInputError
from graphql_schema.errors import code_error
from graphql_schema.mutation import Mutation
from graphql_schema.observer import OperationObserver
from graphql_schema.query import Query
from graphql_schema.subscription import Subscription
from graphql_schema.types import Chunk, Document, Entity, IngestionJob, Relation

log = structlog.get_logger("graphql")

SUBSCRIPTION_NEEDS_STREAM = (
    "a subscription streams its events: open it over a WebSocket at /graphql "
    "(graphql-transport-ws or graphql-ws), not as a single HTTP request"
)


class KGSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            code_error(error)

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """One result per call, so no subscription: strawberry would run one like a
        query, resolving its field with no event (an internal error, "Cannot return null
        for non-nullable field"). Plain HTTP lands here; WebSocket subscriptions go
        through ``subscribe``/``stream`` instead."""
        given = allowed_operation_types
        allowed = set(DEFAULT_ALLOWED_OPERATION_TYPES if given is None else given)
        allowed.discard(OperationType.SUBSCRIPTION)
        try:
            return await super().execute(
                query,
                variable_values=variable_values,
                context_value=context_value,
                root_value=root_value,
                operation_name=operation_name,
                allowed_operation_types=allowed,
                operation_extensions=operation_extensions,
            )
        except InvalidOperationTypeError as exc:
            if exc.operation_type is not OperationType.SUBSCRIPTION:
                raise
            log.info("graphql.subscription_refused", operation=operation_name or "anonymous")
            error = GraphQLError(SUBSCRIPTION_NEEDS_STREAM, extensions={"code": BadInputError.code})
            return ExecutionResult(data=None, errors=[error])


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
