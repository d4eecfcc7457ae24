"""Text every store writes the same way: times as fixed-width ISO-8601 UTC (so text order
is time order), and the check that a text can be encoded before a driver fails on it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from app.domain.errors import BadInputError


def encode_time(value: datetime) -> str:
    """Fixed-width ISO-8601 UTC text, so text order is time order. Naive means UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def encode_optional_time(value: datetime | None) -> str | None:
    return None if value is None else encode_time(value)


def decode_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def decode_optional_time(text: str | None) -> datetime | None:
    return None if text is None else decode_time(text)


def encodable(text: str) -> bool:
    """Whether ``text`` is valid UTF-8 text (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_encodable(subject: str, fields: Iterable[tuple[str, str]]) -> None:
    """BadInputError naming the first field of ``subject`` that is not valid UTF-8."""
    for what, text in fields:
        if not encodable(text):
            raise BadInputError(f"the {subject}'s {what} is not valid UTF-8 text")
