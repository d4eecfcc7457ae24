"""The Strawberry extension that applies the query limits to every operation.

Two moments:

- on_operation, before anything parses the text: size, tokens and selection nesting
  (``check_document_text``). A refusal is raised there, which Strawberry turns into an
  error result (extensions.code BAD_USER_INPUT or QUERY_TOO_COMPLEX) over HTTP. The
  parser also gets ``max_tokens`` as a second guard.
- on_validate, after Strawberry's validation (when ValidationCache stands before this
  extension, as ``build_schema`` orders them) and before execution: depth, aliases,
  fields and cost of the operation that will run, with the request's variables. A
  refusal becomes a pre-execution error, so nothing resolves; a document that failed
  validation keeps its validation errors and is not analysed.

Strawberry's own QueryDepthLimiter and MaxAliasesLimiter are not used: they walk into
every fragment spread, so their time doubles with each level of a doubling fragment
document (measured with strawberry-graphql 0.341: 20 levels took 2-10 s each, 30
levels would take hours).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from app.domain.errors import QueryTooComplexError
from graphql_schema.limits.analysis import check_operation
from graphql_schema.limits.budget import QueryLimits
from graphql_schema.limits.document import check_document_text


class QueryLimitsExtension(SchemaExtension):
    def __init__(self, limits: QueryLimits | None = None) -> None:
        super().__init__()
        self.limits = limits or QueryLimits()

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.query is not None:
            check_document_text(ctx.query, self.limits)
            ctx.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if not ctx.pre_execution_errors and ctx.graphql_document is not None:
            try:
                check_operation(
                    ctx.schema._schema,
                    ctx.graphql_document,
                    ctx.operation_name,
                    ctx.variables,
                    self.limits,
                )
            except QueryTooComplexError as exc:
                ctx.pre_execution_errors = [GraphQLError(exc.message, original_error=exc)]
        yield


def query_limits(limits: QueryLimits | None = None) -> Callable[[], QueryLimitsExtension]:
    """A factory for ``extensions=[...]``: one extension per request, sharing the limits."""
    chosen = limits or QueryLimits()
    return lambda: QueryLimitsExtension(chosen)
