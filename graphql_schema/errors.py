"""How errors reach clients: a stable ``extensions.code`` and a message a person can act
on, never a stack trace.

- our own errors (``KGError``) keep their message and carry their ``code``;
- errors of the GraphQL document itself get GRAPHQL_PARSE_FAILED or
  GRAPHQL_VALIDATION_FAILED, bad variable values BAD_USER_INPUT;
- anything else is a bug: logged with the request id and traceback, and shown only as
  "Internal server error" with code INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

import structlog
from graphql import GraphQLError

from app.domain.errors import KGError

log = structlog.get_logger("graphql.errors")

INTERNAL_MESSAGE = "Internal server error: it was logged, and the request can be retried"


def code_error(error: GraphQLError) -> str:
    """Set the error's ``extensions.code`` in place (masking unexpected ones); return it."""
    original = error.original_error
    extensions = dict(error.extensions or {})
    if isinstance(original, KGError):
        extensions["code"] = original.code
        if original.retryable:
            extensions["retryable"] = True
    elif original is None or isinstance(original, GraphQLError):
        extensions.setdefault("code", _document_code(error.message))
    else:
        log.error(
            "graphql.unexpected_error",
            path=error.path,
            error=repr(original),
            exc_info=(type(original), original, original.__traceback__),
        )
        error.message = INTERNAL_MESSAGE
        error.original_error = None
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
    error.extensions = extensions
    return str(extensions["code"])


def _document_code(message: str) -> str:
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"
