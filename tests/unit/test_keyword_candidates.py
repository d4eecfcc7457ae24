"""Which words bring in the chunks a pruned keyword search scores."""

from __future__ import annotations

from app.adapters.keyword_candidates import candidate_words


def test_words_within_the_budget_together_are_not_pruned() -> None:
    assert candidate_words([("film", 30), ("varma", 2)], 32) is None
    assert candidate_words([], 10) is None
    assert candidate_words([("nowhere", 0)], 1) is None  # nothing to score at all


def test_the_rarest_words_are_taken_while_their_postings_fit() -> None:
    counts = [("film", 11_463), ("varma", 14), ("telugu", 188), ("music", 1_709)]
    assert candidate_words(counts, 2_000) == ["varma", "telugu", "music"]
    assert candidate_words(counts, 1_000) == ["varma", "telugu"]
    assert candidate_words(counts, 100) == ["varma"]


def test_the_rarest_word_is_taken_however_common() -> None:
    assert candidate_words([("film", 11_463), ("american", 4_756)], 1_000) == ["american"]


def test_a_lone_word_is_never_pruned() -> None:
    """Its chunks would be the candidates: the same search, after a count."""
    assert candidate_words([("film", 11_463)], 1_000) is None
    assert candidate_words([("film", 11_463), ("zzz", 0)], 1_000) is None


def test_a_word_no_chunk_holds_is_no_candidate() -> None:
    assert candidate_words([("zzz", 0), ("film", 50), ("born", 60)], 55) == ["film"]


def test_words_as_common_as_each_other_are_taken_in_alphabetical_order() -> None:
    assert candidate_words([("b", 5), ("a", 5), ("c", 9)], 12) == ["a", "b"]


def test_taking_stops_at_the_first_word_that_does_not_fit() -> None:
    """Rarest first: the words after one that does not fit are commoner still."""
    assert candidate_words([("a", 3), ("b", 8), ("c", 9)], 10) == ["a"]
