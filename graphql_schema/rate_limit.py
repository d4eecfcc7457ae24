"""The Strawberry extension that applies the rate limits to every operation.

When: in ``on_validate``, before its ``yield``. ``build_schema`` puts ValidationCache
ahead of every extension, so validation has already run and its errors are in
``pre_execution_errors``; a refusal set there stops the operation before anything
resolves, over HTTP (``execute``) and over WebSocket (``stream``, that is at subscribe
time) alike. Raising would not do: ``stream`` lets an exception out of a hook escape to
the transport. Either side of ``query_limits`` works: an operation it refuses as too
complex pays its general token anyway; placed before it, also its ask and ingest tokens.

What: a valid operation is charged for its root fields (``root_fields``); an invalid
one only for the request (its general token), its validation errors then replaced by
the refusal if the bucket is empty. Documents that fail to parse, or that the query
limits refuse for their size before parsing, never reach ``on_validate`` and are not
charged (their cost is bounded by those size limits).

Who: the request context's ``principal`` (``Principal``) and ``client`` (the client
address, a string); a context without them is a wiring bug, reported as an internal
error. A refusal is ``RATE_LIMITED`` with ``retryAfter`` (seconds) and ``limit``
(general, ask or ingest) in the error's extensions. Over HTTP, when the context holds
Strawberry's sub-response as ``response``, the response becomes ``429 Too Many
Requests`` with a ``Retry-After`` header (whole seconds): the body stays the GraphQL
error, and HTTP clients, proxies and retry libraries understand the status, which a
``Retry-After`` on a 200 would not tell them (RFC 9110 defines it for 429 and 503).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

from app.domain.auth import Principal
from app.domain.errors import KGError, RateLimitedError
from app.security.rate_limits import RateLimits, retry_after_seconds

TOO_MANY_REQUESTS = 429
MISSING_CALLER = (
    "the GraphQL context has no principal or client address: the rate limits need "
    "Context.principal (Principal) and Context.client (str)"
)


def root_fields(document: DocumentNode, operation_name: str | None) -> list[str]:
    """The root field names the selected operation runs, one per response key (fields
    merge by response key), through inline fragments and fragment spreads, each
    fragment visited once; [] when the operation cannot be selected."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    fields: dict[str, str] = {}
    seen: set[str] = set()
    pending: list[SelectionSetNode] = [operation.selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)
    return list(fields.values())


class RateLimitExtension(SchemaExtension):
    def __init__(self, limits: RateLimits) -> None:
        super().__init__()
        self.limits = limits

    async def on_validate(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        caller = ctx.context
        principal = getattr(caller, "principal", None)
        client = getattr(caller, "client", None)
        if not isinstance(principal, Principal) or not isinstance(client, str):
            ctx.pre_execution_errors = [
                GraphQLError(MISSING_CALLER, original_error=TypeError(MISSING_CALLER))
            ]
            yield
            return
        document = ctx.graphql_document
        fields: list[str] = []
        if document is not None and not ctx.pre_execution_errors:
            fields = root_fields(document, ctx.operation_name)
        try:
            await self.limits.admit(principal, client, fields)
        except RateLimitedError as exc:
            ctx.pre_execution_errors = [refusal(exc)]
            mark_http_response(getattr(caller, "response", None), exc)
        except KGError as exc:  # too many ask/ingest fields; the store down when failing closed
            ctx.pre_execution_errors = [GraphQLError(exc.message, original_error=exc)]
        yield


def refusal(exc: RateLimitedError) -> GraphQLError:
    """The error a client sees; ``code`` and ``retryable`` are added by ``code_error``."""
    extensions = {
        "retryAfter": exc.details.get("retry_after"),
        "limit": exc.details.get("limit"),
    }
    return GraphQLError(exc.message, original_error=exc, extensions=extensions)


def mark_http_response(response: object, exc: RateLimitedError) -> None:
    """429 and ``Retry-After`` on Strawberry's sub-response (merged into the response
    it sends); nothing for a WebSocket, whose refusal travels in the error message."""
    if isinstance(response, Response):
        retry_after = exc.details.get("retry_after")
        seconds = retry_after_seconds(float(retry_after)) if retry_after is not None else 1
        response.status_code = TOO_MANY_REQUESTS
        response.headers["Retry-After"] = str(seconds)


def rate_limits(limits: RateLimits) -> Callable[[], RateLimitExtension]:
    """A factory for ``extensions=[...]``: one extension per request, sharing the limits."""
    return lambda: RateLimitExtension(limits)
