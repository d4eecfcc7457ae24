"""Picks the passages a multi-hop question needs together, not only the nearest each.

A two-hop question ("the father of the author of X") is answered by a chain: a passage
about X naming its author, and the author's own page. The second passage is rarely near
the question on its own, and ranking passages one by one fills the context with
near-duplicates about X. So the passages are chosen one at a time (greedy), each for

    similarity to the question
    + ``LINK_BONUS`` when it is linked to a passage chosen before: one mentions an
      entity whose name is the title of the other's document (the knowledge graph's
      mentions, matched against titles: the hyperlinks of an encyclopedia)
    + ``COVERAGE_WEIGHT`` x the share of the question's words (weighted by their rarity
      among the candidates) it holds that no chosen passage holds yet.

A comparison question ("which is older, X or Y") gets X's and Y's passages, since the
second covers the other name; a bridge question gets the bridge entity's page, since it
is linked to the first passage and holds the words the first lacks.

The constants were chosen by hand on the multi-hop dev set; tests/eval/RESULTS.md
measures the result (``python -m tests.eval.qa``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from app.domain.models import ChunkHit
from app.domain.words import query_words, words

LINK_BONUS = 0.3
COVERAGE_WEIGHT = 1.2
_PARENTHESIS = re.compile(r"\s*\([^)]*\)\s*$")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A passage with what the choice needs: its similarity to the question, its words
    (text and document title), the folded names of the entities it mentions and the
    folded title of its document."""

    hit: ChunkHit
    similarity: float
    words: frozenset[str]
    names: frozenset[str]
    title: str


def candidate(
    hit: ChunkHit, similarity: float, text: str, title: str, names: Sequence[str]
) -> Candidate:
    """A candidate from its chunk's text, its document's title and the names (and
    aliases) of the entities the chunk mentions."""
    folded = {" ".join(words(n)) for n in names} - {""}
    return Candidate(
        hit=hit,
        similarity=similarity,
        words=frozenset(words(f"{title} {text}")),
        names=frozenset(folded),
        title=" ".join(words(_PARENTHESIS.sub("", title))),
    )


def linked(a: Candidate, b: Candidate) -> bool:
    """One mentions the entity the other's document is about (is titled by)."""
    return (bool(b.title) and b.title in a.names) or (bool(a.title) and a.title in b.names)


def choose(question: str, candidates: Sequence[Candidate], k: int) -> list[ChunkHit]:
    """The best ``k`` candidates as a chain (see the module's docstring), in the order
    chosen; each hit's score is its gain when chosen, made to fall with the order."""
    asked = list(dict.fromkeys(query_words(question)))
    weight = _rarity(asked, candidates)
    total = sum(weight.values()) or 1.0
    left = list(candidates)
    chosen: list[Candidate] = []
    covered: set[str] = set()
    out: list[ChunkHit] = []
    while left and len(chosen) < k:
        gains = [
            c.similarity
            + (LINK_BONUS if any(linked(c, p) for p in chosen) else 0.0)
            + COVERAGE_WEIGHT * sum(weight[w] for w in c.words & weight.keys() - covered) / total
            for c in left
        ]
        best = max(range(len(left)), key=lambda n: (gains[n], -n))
        pick = left.pop(best)
        chosen.append(pick)
        covered |= pick.words
        score = gains[best] if not out else min(gains[best], out[-1].score)
        out.append(ChunkHit(pick.hit.chunk_id, pick.hit.document_id, score))
    return out


def _rarity(asked: Sequence[str], candidates: Sequence[Candidate]) -> dict[str, float]:
    """Inverse document frequency of each question word among the candidates: a word
    every candidate holds tells them apart the least."""
    n = len(candidates)
    held = Counter(w for c in candidates for w in c.words.intersection(asked))
    return {w: math.log((n + 1) / (held[w] + 0.5)) for w in asked}
