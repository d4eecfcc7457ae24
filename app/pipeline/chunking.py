"""Sentence-aware chunking to a token budget, in the embedder's own tokens.

Chunks are what the embedder reads and what answers cite, so they follow sentences: a
chunk packs whole sentences greedily until the next would pass the target, and the next
chunk starts with the trailing sentences of the previous one that fit in the overlap, so
a fact on a boundary is whole in at least one chunk. A sentence longer than the target is
cut on word boundaries into overlapping pieces within the target (and a word longer than
the target into runs of characters), so no chunk is truncated by the model.

Every chunk's text is ``text[start:end]`` exactly. Tokens are counted in batches: one
call for all sentences, one more for the words of over-long sentences if there are any.
A chunk's ``token_count`` is the sum of its parts' counts, which is its own count for
tokenizers that split on whitespace (WordPiece does, and a test checks it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.ports.models import Span

__all__ = ["TextChunk", "TokenCounter", "chunk_text"]

TokenCounter = Callable[[Sequence[str]], list[int]]

_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A chunk of a text: ``text == source[start:end]``, ``index`` counts from 0."""

    index: int
    start: int
    end: int
    text: str
    token_count: int


def chunk_text(
    text: str,
    sentences: Sequence[Span],
    count_tokens: TokenCounter,
    target_tokens: int = 256,
    overlap_tokens: int = 32,
) -> list[TextChunk]:
    """Chunks covering every non-blank character of ``text``.

    ``sentences`` are spans into ``text`` (from the extractor); they may leave gaps, and
    any text in a gap is chunked as a sentence of its own. With no sentences the whole
    text is one. Raises ``ValueError`` for a span outside the text or a bad budget.
    """
    if target_tokens < 1:
        raise ValueError(f"target_tokens must be at least 1, not {target_tokens}")
    if overlap_tokens < 0:
        raise ValueError(f"overlap_tokens must not be negative, not {overlap_tokens}")
    spans = _covering_spans(text, sentences)
    if not spans:
        return []
    counts = _count(count_tokens, [text[a:b] for a, b in spans])
    if any(c > target_tokens for c in counts):
        spans, counts = _split_long(
            text, spans, counts, count_tokens, target_tokens, overlap_tokens
        )
    return [
        TextChunk(
            index=index,
            start=spans[first][0],
            end=spans[last - 1][1],
            text=text[spans[first][0] : spans[last - 1][1]],
            token_count=sum(counts[first:last]),
        )
        for index, (first, last) in enumerate(_pack(counts, target_tokens, overlap_tokens))
    ]


def _covering_spans(text: str, sentences: Sequence[Span]) -> list[tuple[int, int]]:
    """Sorted, disjoint, whitespace-trimmed spans that cover all non-blank text: the
    sentences (overlapping ones merged) and whatever text lies between them."""
    raw: list[tuple[int, int]] = []
    for s in sentences:
        if not 0 <= s.start <= s.end <= len(text):
            raise ValueError(f"sentence span {s.start}:{s.end} is outside a text of {len(text)}")
        raw.append((s.start, s.end))
    raw.sort()
    merged: list[tuple[int, int]] = []
    pos = 0
    for start, end in raw:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            pos = merged[-1][1]
            continue
        merged.append((pos, start))  # the gap before this sentence
        merged.append((start, end))
        pos = end
    merged.append((pos, len(text)))
    return [span for a, b in merged if (span := _trim(text, a, b)) is not None]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    piece = text[start:end]
    stripped = piece.lstrip()
    if not stripped:
        return None
    start += len(piece) - len(stripped)
    return start, start + len(stripped.rstrip())


def _count(count_tokens: TokenCounter, texts: list[str]) -> list[int]:
    counts = count_tokens(texts)
    if len(counts) != len(texts):
        raise ValueError(f"count_tokens returned {len(counts)} counts for {len(texts)} texts")
    return list(counts)


def _split_long(
    text: str,
    spans: list[tuple[int, int]],
    counts: list[int],
    count_tokens: TokenCounter,
    target: int,
    overlap: int,
) -> tuple[list[tuple[int, int]], list[int]]:
    """Replace each span over the target by overlapping pieces of whole words."""
    words = [
        (i, *m.span())
        for i, ((a, b), c) in enumerate(zip(spans, counts, strict=True))
        if c > target
        for m in _WORD.finditer(text, a, b)
    ]
    word_counts = _count(count_tokens, [text[a:b] for _, a, b in words])
    words, word_counts = _split_long_words(text, words, word_counts, count_tokens, target)
    by_span: dict[int, list[tuple[int, int, int]]] = {}
    for (i, a, b), c in zip(words, word_counts, strict=True):
        by_span.setdefault(i, []).append((a, b, c))
    out_spans: list[tuple[int, int]] = []
    out_counts: list[int] = []
    for i, (span, count) in enumerate(zip(spans, counts, strict=True)):
        units = by_span.get(i)
        if units is None:
            out_spans.append(span)
            out_counts.append(count)
            continue
        unit_counts = [c for _, _, c in units]
        for first, last in _pack(unit_counts, target, overlap):
            out_spans.append((units[first][0], units[last - 1][1]))
            out_counts.append(sum(unit_counts[first:last]))
    return out_spans, out_counts


def _split_long_words(
    text: str,
    words: list[tuple[int, int, int]],
    counts: list[int],
    count_tokens: TokenCounter,
    target: int,
) -> tuple[list[tuple[int, int, int]], list[int]]:
    """Cut words (``(owner, start, end)``) over the target into runs of characters,
    halving the run length until they fit; a single character is kept whatever it
    counts. One batched count per halving."""
    width = target
    while width >= 1 and any(
        c > target and b - a > 1 for (_, a, b), c in zip(words, counts, strict=True)
    ):
        pieces: list[tuple[int, int, int]] = []
        piece_counts: list[int] = []
        fresh: list[int] = []  # positions in ``pieces`` still to count
        for (owner, a, b), c in zip(words, counts, strict=True):
            if c <= target or b - a <= 1:
                pieces.append((owner, a, b))
                piece_counts.append(c)
                continue
            for start in range(a, b, width):
                fresh.append(len(pieces))
                pieces.append((owner, start, min(start + width, b)))
                piece_counts.append(0)
        new_counts = _count(count_tokens, [text[pieces[i][1] : pieces[i][2]] for i in fresh])
        for i, c in zip(fresh, new_counts, strict=True):
            piece_counts[i] = c
        words, counts = pieces, piece_counts
        width //= 2
    return words, counts


def _pack(counts: Sequence[int], target: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of units into ``[first, last)`` groups within ``target``.

    Each group after the first starts with the trailing units of the previous group that
    fit in ``overlap`` and still leave room for one new unit, and never with the whole
    previous group: every group adds at least one unit, so packing always ends.
    """
    groups: list[tuple[int, int]] = []
    first, n = 0, len(counts)
    while first < n:
        total, last = counts[first], first + 1
        while last < n and total + counts[last] <= target:
            total += counts[last]
            last += 1
        groups.append((first, last))
        if last == n:
            break
        start, carried = last, 0
        while (
            overlap > 0
            and start - 1 > first
            and carried + counts[start - 1] <= overlap
            and carried + counts[start - 1] + counts[last] <= target
        ):
            start -= 1
            carried += counts[start]
        first = start
    return groups
