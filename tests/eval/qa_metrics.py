"""The scores of the question-answering evaluation, kept apart so they can be unit tested.

Retrieval is scored on distinct paragraphs: a ranking of chunk hits is first reduced to
the paragraphs they come from, in order of first appearance. ``recall_at_k`` counts a
question only when ALL its supporting paragraphs are in the top k (the HotpotQA /
MuSiQue convention: a multi-hop question needs every hop); ``reciprocal_rank`` is that of
the first supporting paragraph. Answers are scored as SQuAD does (Rajpurkar et al., 2016,
the official v1.1 script): lower case, punctuation and the articles a/an/the removed,
whitespace collapsed; exact match and token F1, each the best over the gold answers.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Sequence
from typing import TypeVar

H = TypeVar("H", bound=Hashable)

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _golds(golds: Sequence[str]) -> Sequence[str]:
    if isinstance(golds, str) or not golds:
        raise ValueError("gold answers must be a non-empty list of strings")
    return golds


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _golds(golds)))


def _token_f1(prediction: str, gold: str) -> float:
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(gold).split()
    if not pred or not ref:
        # Nothing left on one side (e.g. an empty answer): right only if both are empty.
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred)
    recall = common / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """Token-overlap F1 (with multiplicity) of the prediction, best over the golds."""
    return max(_token_f1(prediction, g) for g in _golds(golds))


def distinct(items: Iterable[H]) -> list[H]:
    """The items in order of first appearance, each once (chunks -> paragraphs)."""
    return list(dict.fromkeys(items))


def _check(supporting: Collection[H], k: int | None = None) -> set[H]:
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    gold = set(supporting)
    if not gold:
        raise ValueError("a question without supporting paragraphs cannot be scored")
    return gold


def recall_at_k(ranking: Sequence[H], supporting: Collection[H], k: int) -> float:
    """1.0 when every supporting paragraph is among the first k distinct ones, else 0.0."""
    gold = _check(supporting, k)
    return float(gold <= set(distinct(ranking)[:k]))


def reciprocal_rank(ranking: Sequence[H], supporting: Collection[H]) -> float:
    """1 / rank (from 1, over distinct paragraphs) of the first supporting one; 0 if none."""
    gold = _check(supporting)
    for rank, item in enumerate(distinct(ranking), start=1):
        if item in gold:
            return 1.0 / rank
    return 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation, as numpy's default."""
    if not values:
        raise ValueError("no values to take a percentile of")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; 0.0 for no values (a mode that answered nothing)."""
    return sum(values) / len(values) if values else 0.0
