"""Cursors are opaque, round-trip, and malformed ones are a clear BAD_USER_INPUT."""

from __future__ import annotations

import base64

import pytest

from app.domain.errors import BadInputError
from app.domain.models import Page
from graphql_schema.relay import connection, decode_cursor, encode_cursor


@pytest.mark.parametrize("offset", [0, 1, 19, 10_000])
def test_cursor_round_trip(offset: int) -> None:
    assert decode_cursor(encode_cursor(offset)) == offset + 1


def test_no_cursor_starts_at_zero() -> None:
    assert decode_cursor(None) == 0


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage!",
        "ÿÿ",
        base64.urlsafe_b64encode(b"kg:v1:-1").decode(),
        base64.urlsafe_b64encode(b"kg:v1:abc").decode(),
        base64.urlsafe_b64encode(b"arrayconnection:3").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_malformed_cursor(bad: str) -> None:
    with pytest.raises(BadInputError, match="cursor"):
        decode_cursor(bad)


def test_connection_page_info() -> None:
    page = Page(items=["a", "b"], total=5)
    conn = connection(page, 2, str.upper)
    assert [e.node for e in conn.edges] == ["A", "B"]
    assert conn.total_count == 5
    assert conn.page_info.has_next_page and conn.page_info.has_previous_page
    assert decode_cursor(conn.page_info.end_cursor) == 4
    empty = connection(Page(items=[], total=0), 0, str)
    assert empty.page_info.start_cursor is None and not empty.page_info.has_next_page
