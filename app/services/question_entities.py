"""Which known entities a question names: the seeds of a LOCAL walk.

Candidates come from the graph store's name index (``search_entities``) for the
question's content words; each is then judged by how well one of its names (name or
alias) fits a run of the question's words of about the same length (RapidFuzz ratio,
0 to 100, on folded words), so "Nolen's film" still finds "Christopher Nolan" via
"nolan"-like runs and a typo costs a few points, not the match. Names the extractor
recognises in the question as entities of the same text score a bonus. Numbers, dates
and amounts are never seeds: they join everything and mean little alone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rapidfuzz import fuzz

from app.domain.models import Entity
from app.domain.words import FUNCTION_WORDS, fold, words
from app.ports.graph_store import GraphStore
from app.ports.models import Extractor

# At most this many seeds start a walk, from this many candidates.
MAX_SEEDS = 5
CANDIDATES = 50
# The least fit (RapidFuzz ratio, 0-100) for a name to count as named by the question.
MIN_FIT = 88.0
# Added to the fit of a name the extractor also found in the question.
EXTRACTED_BONUS = 5.0
# Entity types that are values, not things: never seeds.
VALUE_TYPES = frozenset({"DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "CARDINAL", "ORDINAL"})
# Types that qualify rather than name ("English", "American"): joined to everything of
# a kind, so never seeds either.
QUALIFIER_TYPES = frozenset({"NORP", "LANGUAGE"})
# Words that are no name on their own: never searched for entities, never a name's only
# word ("one", "the first", "born").
STOP_WORDS = FUNCTION_WORDS | frozenset(
    """
    one after before between during first last many much most other same some such both
    each more only own name named called year years time born died
    """.split()  # noqa: SIM905
)


@dataclass(frozen=True, slots=True)
class Seed:
    entity: Entity
    fit: float


class QuestionEntities:
    def __init__(self, graph: GraphStore, extractor: Extractor) -> None:
        self._graph = graph
        self._extractor = extractor

    async def recognise(self, question: str) -> list[Seed]:
        """The entities the question names, best fit first, at most ``MAX_SEEDS``."""
        content = [w for w in dict.fromkeys(words(question)) if w not in STOP_WORDS]
        if not content:
            return []
        candidates, extracted = await asyncio.gather(
            self._graph.search_entities(content, CANDIDATES), self._extracted(question)
        )
        question_words = words(question)
        seeds = []
        for entity in candidates:
            if entity.type.upper() in VALUE_TYPES | QUALIFIER_TYPES:
                continue
            fit = best_fit(entity, question_words)
            if fit < MIN_FIT:
                continue
            if any(fold(name) in extracted for name in (entity.name, *entity.aliases)):
                fit += EXTRACTED_BONUS
            seeds.append(Seed(entity, fit))
        seeds = _without_parts(seeds)
        # Every seed fits; the rarer one is the more specific ("Summer Wars" before
        # "Japan"), as a rare word weighs more in a search.
        seeds.sort(key=lambda s: (s.entity.mention_count, -s.fit, s.entity.id))
        return seeds[:MAX_SEEDS]

    async def _extracted(self, question: str) -> frozenset[str]:
        """The folded texts of the entity mentions the extractor finds in the question."""
        if not self._extractor.loaded:
            return frozenset()
        found = await asyncio.to_thread(self._extractor.extract, [question])
        return frozenset(" ".join(words(m.text)) for m in found[0].mentions)


def _without_parts(seeds: list[Seed]) -> list[Seed]:
    """Seeds whose name is not a part of another seed's name ("Covey" goes when "Sean
    Covey" is named too): the longer name is what the question means."""
    names = {s.entity.id: " " + " ".join(words(s.entity.name)) + " " for s in seeds}
    return [
        s
        for s in seeds
        if not any(
            names[s.entity.id] != names[o.entity.id] and names[s.entity.id] in names[o.entity.id]
            for o in seeds
        )
    ]


def best_fit(entity: Entity, question_words: list[str]) -> float:
    """How well the best of the entity's names fits a run of the question's words:
    the RapidFuzz ratio of the folded name and the best run of the same number of
    words, one more or one fewer. A name of stop words only never fits."""
    best = 0.0
    for name in (entity.name, *entity.aliases):
        name_words = words(name)
        if not name_words or all(w in STOP_WORDS for w in name_words):
            continue
        target = " ".join(name_words)
        for size in {len(name_words) - 1, len(name_words), len(name_words) + 1} - {0}:
            for start in range(0, max(0, len(question_words) - size) + 1):
                run = " ".join(question_words[start : start + size])
                if run:
                    best = max(best, fuzz.ratio(target, run))
    return best
