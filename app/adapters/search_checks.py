"""Argument checks the stores share (search arguments, vectors), so they cannot drift."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

from app.adapters.search_words import query_words
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


def entity_search_terms(words: Sequence[str], k: int) -> list[str]:
    """The words ``search_entities`` looks for: the distinct folded words of ``words``
    (an element with several words gives each), at most ``MAX_QUERY_TERMS``; none when
    ``k`` is 0. A negative ``k`` is refused, as ``keyword_search`` refuses it."""
    if k < 0:
        raise BadInputError(f"k must not be negative, got {k}")
    return query_words(" ".join(words)) if k else []


def checked_vector(
    values: Sequence[float], dimension: int, *, nonzero: bool = False
) -> list[float]:
    """``values`` as floats, refused unless it has the store's dimension and only finite
    values (and, for stores that cannot rank it, is not all zeros)."""
    if len(values) != dimension:
        raise BadInputError(f"vector has {len(values)} dimensions, the store holds {dimension}")
    floats = list(map(float, values))  # map: no Python frame per value (a query has 384)
    norm = sum(map(operator.mul, floats, floats))
    if not math.isfinite(norm):  # NaN and inf survive the sum
        raise BadInputError("vector holds a NaN or infinite value (or overflows its norm)")
    if nonzero and norm == 0.0:
        raise BadInputError("vector is all zeros: it has no cosine similarity")
    return floats
