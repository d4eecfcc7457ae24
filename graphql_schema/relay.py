"""Relay connections with opaque offset cursors.

A cursor is the base64 of ``"kg:v1:<offset>"``: opaque to clients, stable for a stable
order, and checked on the way in so a malformed one is a clear BAD_USER_INPUT.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Generic, TypeVar

import strawberry

from app.domain.errors import BadInputError
from app.domain.models import Page

T = TypeVar("T")
M = TypeVar("M")

_PREFIX = "kg:v1:"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """The offset after ``cursor`` (0 for none)."""
    if cursor is None:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise BadInputError(f"after: {cursor!r} is not a cursor this server gave out") from exc
    if not raw.startswith(_PREFIX) or not raw[len(_PREFIX) :].isdigit():
        raise BadInputError(f"after: {cursor!r} is not a cursor this server gave out")
    return int(raw[len(_PREFIX) :]) + 1


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    total_count: int


def connection(page: Page[M], offset: int, to_node: Callable[[M], T]) -> Connection[T]:
    edges = [
        Edge(cursor=encode_cursor(offset + i), node=to_node(item))
        for i, item in enumerate(page.items)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=offset + len(edges) < page.total,
            has_previous_page=offset > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=page.total,
    )
