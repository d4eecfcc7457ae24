"""Answers without an LLM: the span of the passages that best answers the question.

1. Every sentence of the passages is scored by the question's content words it holds
   (a word matches its inflections: "work" finds "worked"), each weighted by its rarity
   among the passages' sentences (inverse document frequency, so "Lovelace" counts
   more than "born"). A sentence also earns half the score of its best neighbour in
   the same passage, since "She was born in 1815" follows the sentence that names her.
2. If no sentence holds any of the question's words, nothing supports an answer and the
   generator says so, citing nothing.
3. When the question asks for a type ("who" a person or organisation, "when" a date,
   "where" a place, "how many" a number), the answer is the entity of that type, not
   among the question's words, in the best-scoring sentence that has one (the asked
   types in order of preference weigh the score). Otherwise, or when no sentence has
   one, the answer is the best sentence itself. Passages retrieved higher earn a small
   prior throughout.

It cites the sentence it took the answer from, a quote that is an exact substring of
the passage. Sentences and entities come from the extractor (the same spaCy model as
ingestion), in one call over the passages, in a worker thread.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from app.domain.words import FUNCTION_WORDS, words
from app.ports.generator import Generated, GeneratedCitation, Passage
from app.ports.models import ExtractedMention, Extractor

NOTHING_FOUND = "The ingested documents do not answer this question."
# Weight of the retrieval rank: a sentence of passage n gains RANK_PRIOR / n.
RANK_PRIOR = 0.25
# A sentence's share of its best neighbour's score (pronouns refer back).
NEIGHBOUR_SHARE = 0.5
# How much an entity of the first, second... asked type weighs ("who": a person first).
TYPE_WEIGHTS = (1.0, 0.8, 0.6, 0.5)
_SUFFIXES = ("ings", "ing", "ed", "es", "s")
_DAY_BEFORE = re.compile(r"\b\d{1,2}\s+$")
_YEAR_AFTER = re.compile(r",?\s+\d{1,4}\b")
_PEOPLE = ("PERSON", "ORG", "NORP")
_TIMES = ("DATE", "TIME")
_PLACES = ("GPE", "LOC", "FAC")
_AMOUNTS = ("CARDINAL", "QUANTITY", "MONEY", "PERCENT")
# The entity types a question asks for, by its opening words (longest first).
_ASKS_FOR: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("how", "many"), _AMOUNTS),
    (("how", "much"), _AMOUNTS),
    (("how", "old"), ("DATE", "CARDINAL", "QUANTITY")),
    (("how", "long"), ("DATE", "TIME", "QUANTITY", "CARDINAL")),
    (("what", "year"), _TIMES),
    (("which", "year"), _TIMES),
    (("what", "date"), _TIMES),
    (("in", "what", "year"), _TIMES),
    (("in", "which", "year"), _TIMES),
    (("who",), _PEOPLE),
    (("whom",), _PEOPLE),
    (("whose",), _PEOPLE),
    (("when",), _TIMES),
    (("where",), _PLACES),
    (("which", "country"), _PLACES),
    (("what", "country"), _PLACES),
    (("which", "city"), _PLACES),
    (("what", "city"), _PLACES),
)


@dataclass(frozen=True, slots=True)
class _Sentence:
    passage: Passage
    text: str
    stems: frozenset[str]
    mentions: tuple[ExtractedMention, ...]


class ExtractiveGenerator:
    """The Generator port without a model server; see the module docstring."""

    name = "extractive"

    def __init__(self, extractor: Extractor) -> None:
        self._extractor = extractor

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def stream(
        self, question: str, passages: Sequence[Passage]
    ) -> AsyncIterator[str | Generated]:
        generated = await asyncio.to_thread(self.answer, question, passages)
        yield generated.text
        yield generated

    def answer(self, question: str, passages: Sequence[Passage]) -> Generated:
        question_words = words(question)
        asked = [stem(w) for w in dict.fromkeys(question_words) if w not in FUNCTION_WORDS]
        found = self._sentences(passages) if asked else []
        if not found:
            return _unsupported()
        rarity = _rarity(found, asked)
        own = [sum(rarity[w] for w in asked if w in s.stems) for s in found]
        if max(own) == 0:
            return _unsupported()
        scores = [
            own[i]
            + NEIGHBOUR_SHARE
            * max(_same_passage(found, own, i, i - 1), _same_passage(found, own, i, i + 1))
            + RANK_PRIOR / s.passage.number
            for i, s in enumerate(found)
        ]
        wanted = asks_for(question)
        if wanted:
            asked_set = set(question_words)
            spans = [
                (scores[i] * TYPE_WEIGHTS[wanted.index(m.label)], -i, _whole(s, m), s)
                for i, s in enumerate(found)
                for m in s.mentions
                if m.label in wanted and not set(words(m.text)) <= asked_set
            ]
            if spans:
                _, _, text, sentence = max(spans, key=lambda c: (c[0], c[1]))
                return _cited(text, sentence)
        best = max(range(len(found)), key=lambda i: (scores[i], -i))
        return _cited(found[best].text, found[best])

    def _sentences(self, passages: Sequence[Passage]) -> list[_Sentence]:
        extracted = self._extractor.answer_spans([p.text for p in passages])
        found = []
        for passage, result in zip(passages, extracted, strict=True):
            for n, span in enumerate(result.sentences):
                raw = passage.text[span.start : span.end]
                text = raw.strip()
                if text:
                    mentions = tuple(m for m in result.mentions if m.sentence == n)
                    found.append(
                        _Sentence(passage, text, frozenset(stem(w) for w in words(text)), mentions)
                    )
        return found


def _whole(sentence: _Sentence, mention: ExtractedMention) -> str:
    """The mention's text; a date widened over the day and year numbers beside it,
    which the small model often leaves out ("11 November 875", not "November")."""
    if mention.label != "DATE":
        return mention.text
    text = sentence.passage.text
    start, end = mention.start, mention.end
    before = _DAY_BEFORE.search(text, 0, start)
    after = _YEAR_AFTER.match(text, end)
    return text[before.start() if before else start : after.end() if after else end].strip()


def stem(word: str) -> str:
    """A crude stem, so that inflections match ("worked", "works" -> "work")."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def asks_for(question: str) -> tuple[str, ...]:
    """The entity types the question's opening words ask for, preferred first (none
    for other questions)."""
    opening = words(question)[:3]
    for prefix, types in _ASKS_FOR:
        if tuple(opening[: len(prefix)]) == prefix:
            return types
    return ()


def _same_passage(found: Sequence[_Sentence], own: Sequence[float], i: int, j: int) -> float:
    if 0 <= j < len(found) and found[j].passage is found[i].passage:
        return own[j]
    return 0.0


def _rarity(sentences: Sequence[_Sentence], asked: Sequence[str]) -> dict[str, float]:
    """Inverse document frequency of each asked word over the sentences."""
    n = len(sentences)
    return {w: math.log(1 + n / (1 + sum(1 for s in sentences if w in s.stems))) for w in asked}


def _cited(text: str, sentence: _Sentence) -> Generated:
    return Generated(
        text=text,
        citations=(GeneratedCitation(sentence.passage.number, sentence.text),),
        model=ExtractiveGenerator.name,
    )


def _unsupported() -> Generated:
    return Generated(
        text=NOTHING_FOUND, citations=(), model=ExtractiveGenerator.name, supported=False
    )
