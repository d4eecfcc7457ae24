"""The scores of the question-answering evaluation (tests/eval/qa_metrics.py)."""

from __future__ import annotations

import pytest

from tests.eval.qa_metrics import (
    distinct,
    exact_match,
    mean,
    normalize_answer,
    percentile,
    recall_at_k,
    reciprocal_rank,
    token_f1,
)

# --- normalisation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  an   apple, a PEAR!  ", "apple pear"),
        ("U.S.A.", "usa"),
        ("Theatre of the Absurd", "theatre of absurd"),  # "the" inside a word stays
        ("anthem", "anthem"),
        ("Rock 'n' roll", "rock n roll"),
        ("A", ""),
        ("", ""),
        ("?!.", ""),
        ("1,000 km", "1000 km"),
    ],
)
def test_normalize_answer(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


# --- exact match and F1 ----------------------------------------------------------------


def test_exact_match_ignores_case_punctuation_and_articles() -> None:
    assert exact_match("the Liezel Huber.", ["Liezel Huber"]) == 1.0
    assert exact_match("Liezel", ["Liezel Huber"]) == 0.0


def test_exact_match_takes_the_best_gold_alias() -> None:
    assert exact_match("NYC", ["New York City", "NYC"]) == 1.0


def test_f1_of_a_partial_answer() -> None:
    # prediction "liezel huber won" against "liezel huber": P = 2/3, R = 1
    assert token_f1("Liezel Huber won", ["Liezel Huber"]) == pytest.approx(0.8)


def test_f1_is_the_max_over_golds() -> None:
    assert token_f1("Paris France", ["London", "Paris"]) == pytest.approx(2 / 3)
    assert token_f1("Paris", ["London", "Paris"]) == 1.0


def test_f1_counts_repeated_tokens_once_per_occurrence() -> None:
    # "new new new" shares one "new" with "new york": P = 1/3, R = 1/2
    assert token_f1("new new new", ["New York"]) == pytest.approx(0.4)


def test_f1_of_no_overlap_is_zero() -> None:
    assert token_f1("Berlin", ["Paris"]) == 0.0


def test_an_empty_answer_scores_zero_against_a_real_gold() -> None:
    assert exact_match("", ["Paris"]) == 0.0
    assert token_f1("", ["Paris"]) == 0.0
    assert token_f1("the", ["Paris"]) == 0.0  # normalises to nothing


def test_an_answer_that_normalises_to_nothing_matches_a_gold_that_does_too() -> None:
    assert exact_match("The.", ["a"]) == 1.0
    assert token_f1("The.", ["a"]) == 1.0


@pytest.mark.parametrize("golds", [[], "Paris"])
def test_gold_answers_must_be_a_non_empty_list(golds: list[str] | str) -> None:
    with pytest.raises(ValueError, match="gold answers"):
        exact_match("Paris", golds)
    with pytest.raises(ValueError, match="gold answers"):
        token_f1("Paris", golds)


# --- retrieval -------------------------------------------------------------------------


def test_distinct_keeps_first_appearance_order() -> None:
    assert distinct(["b", "a", "b", "c", "a"]) == ["b", "a", "c"]
    assert distinct([]) == []


def test_recall_needs_every_supporting_paragraph() -> None:
    ranking = ["d1", "x", "d2", "y", "d3"]
    assert recall_at_k(ranking, {"d1", "d2"}, 2) == 0.0
    assert recall_at_k(ranking, {"d1", "d2"}, 3) == 1.0
    assert recall_at_k(ranking, ["d1", "d2", "d3"], 4) == 0.0
    assert recall_at_k(ranking, ["d1", "d2", "d3"], 5) == 1.0


def test_recall_counts_distinct_paragraphs_not_chunks() -> None:
    # Three chunks of d1 take one place, so d2 is second among paragraphs.
    ranking = ["d1", "d1", "d1", "d2"]
    assert recall_at_k(ranking, {"d1", "d2"}, 2) == 1.0


def test_recall_ignores_duplicate_supporting_ids() -> None:
    assert recall_at_k(["d1", "d2"], ["d1", "d1", "d2"], 2) == 1.0


def test_recall_with_no_gold_hit_or_an_empty_ranking_is_zero() -> None:
    assert recall_at_k(["x", "y"], {"d1"}, 10) == 0.0
    assert recall_at_k([], {"d1"}, 10) == 0.0


def test_recall_with_k_beyond_the_ranking_uses_what_is_there() -> None:
    assert recall_at_k(["d1"], {"d1"}, 10) == 1.0


@pytest.mark.parametrize("k", [0, -1])
def test_recall_refuses_a_k_below_one(k: int) -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        recall_at_k(["d1"], {"d1"}, k)


def test_a_question_without_supporting_paragraphs_is_refused() -> None:
    with pytest.raises(ValueError, match="without supporting"):
        recall_at_k(["d1"], set(), 5)
    with pytest.raises(ValueError, match="without supporting"):
        reciprocal_rank(["d1"], [])


def test_reciprocal_rank_of_the_first_supporting_paragraph() -> None:
    assert reciprocal_rank(["d2", "x"], {"d1", "d2"}) == 1.0
    assert reciprocal_rank(["x", "y", "d1"], {"d1", "d2"}) == pytest.approx(1 / 3)


def test_reciprocal_rank_counts_distinct_paragraphs() -> None:
    assert reciprocal_rank(["x", "x", "x", "d1"], {"d1"}) == 0.5


def test_reciprocal_rank_with_no_gold_hit_is_zero() -> None:
    assert reciprocal_rank(["x", "y"], {"d1"}) == 0.0
    assert reciprocal_rank([], {"d1"}) == 0.0


# --- summaries -------------------------------------------------------------------------


def test_percentile_interpolates_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile([7.0], 95) == 7.0


def test_percentile_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0], 101)


def test_mean_of_nothing_is_zero() -> None:
    assert mean([]) == 0.0
    assert mean([1.0, 0.0, 0.5]) == pytest.approx(0.5)
