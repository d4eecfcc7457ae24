"""Errors reach clients with a stable code; bugs are masked and logged, never shown."""

from __future__ import annotations

import pytest
from graphql import GraphQLError

from app.domain import errors
from graphql_schema.errors import INTERNAL_MESSAGE, code_error


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.BadInputError("bad"), "BAD_USER_INPUT"),
        (errors.NotFoundError("gone"), "NOT_FOUND"),
        (errors.UnauthenticatedError("who"), "UNAUTHENTICATED"),
        (errors.ForbiddenError("no"), "FORBIDDEN"),
        (errors.RateLimitedError("slow"), "RATE_LIMITED"),
        (errors.QueryTooComplexError("big"), "QUERY_TOO_COMPLEX"),
        (errors.UnavailableError("down"), "UNAVAILABLE"),
    ],
)
def test_our_errors_keep_message_and_code(error: errors.KGError, code: str) -> None:
    wrapped = GraphQLError(error.message, original_error=error)
    assert code_error(wrapped) == code
    assert wrapped.formatted["extensions"]["code"] == code
    assert wrapped.formatted["message"] == error.message


def test_retryable_errors_say_so() -> None:
    wrapped = GraphQLError("down", original_error=errors.UnavailableError("down"))
    code_error(wrapped)
    assert wrapped.formatted["extensions"] == {"code": "UNAVAILABLE", "retryable": True}


def test_bugs_are_masked() -> None:
    wrapped = GraphQLError("secret path /etc/x", original_error=KeyError("password"))
    assert code_error(wrapped) == "INTERNAL_SERVER_ERROR"
    formatted = wrapped.formatted
    assert formatted["message"] == INTERNAL_MESSAGE
    assert "password" not in str(formatted) and "/etc" not in str(formatted)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Syntax Error: Expected Name, found <EOF>.", "GRAPHQL_PARSE_FAILED"),
        ("Cannot query field 'nope' on type 'Query'.", "GRAPHQL_VALIDATION_FAILED"),
        ("Variable '$n' got invalid value 'ten'; Int cannot represent it", "BAD_USER_INPUT"),
    ],
)
def test_document_errors(message: str, code: str) -> None:
    assert code_error(GraphQLError(message)) == code
