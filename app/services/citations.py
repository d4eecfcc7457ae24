"""Citations checked against the context: what a generator claims is never trusted.

A citation of a passage number that was not in the context is dropped; a quote that is
not an exact substring of the cited chunk (or none at all) is replaced by the chunk's
sentence that shares the most words with the answer. So every ``Citation.quote`` a
client sees can be found verbatim in ``Citation.chunk.text``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from app.domain.models import Citation
from app.domain.words import words
from app.ports.generator import GeneratedCitation
from app.services.answer_context import ContextPassage

# A sentence ends at . ! or ? followed by white space (good enough to pick a quote).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def checked_citations(
    claimed: Sequence[GeneratedCitation], context: Sequence[ContextPassage], answer: str
) -> list[Citation]:
    """The claimed citations that name a passage of the context, each once, with a
    quote that is an exact substring of the cited chunk."""
    found: dict[tuple[str, str], Citation] = {}
    for claim in claimed:
        if not 1 <= claim.passage <= len(context):
            continue
        passage = context[claim.passage - 1]
        text = passage.chunk.text
        quote = claim.quote.strip()
        if not quote or quote not in text:
            quote = best_sentence(text, answer)
        key = (passage.chunk.id, quote)
        if key not in found:
            found[key] = Citation(
                passage.chunk.document_id, passage.chunk.id, quote, passage.hit.score
            )
    return list(found.values())


def sentences(text: str) -> list[str]:
    """The sentences of ``text``, each an exact substring of it."""
    return [s for s in (part.strip() for part in _SENTENCE_END.split(text)) if s]


def best_sentence(text: str, answer: str) -> str:
    """The sentence of ``text`` sharing the most words with ``answer`` (the first on a
    tie; the whole text when it has no sentence)."""
    answer_words = set(words(answer))
    parts = sentences(text) or [text]
    return max(parts, key=lambda s: len(answer_words.intersection(words(s))))
