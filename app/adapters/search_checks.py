"""Argument checks every store's search shares, so they cannot drift apart."""

from __future__ import annotations

from app.domain.errors import BadInputError
from app.domain.models import ChunkFilter


def matches_nothing(k: int, filter: ChunkFilter) -> bool:
    """True when a search can only answer ``[]``: ``k`` is 0, or a filter names an empty
    list (an empty list matches nothing; ``None`` means no restriction). A negative
    ``k`` is refused."""
    if k < 0:
        raise BadInputError(f"k must not be negative, got {k}")
    return (
        k == 0
        or (filter.document_ids is not None and not filter.document_ids)
        or (filter.entity_types is not None and not filter.entity_types)
    )
