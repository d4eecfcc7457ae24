"""How the passages of a multi-hop question are chosen together (evidence_chains)."""

from __future__ import annotations

from app.domain.models import ChunkHit
from app.services.evidence_chains import Candidate, candidate, choose, linked


def passage(n: int, similarity: float, title: str, text: str, *names: str) -> Candidate:
    return candidate(ChunkHit(f"c{n}", f"d{n}", 0.0), similarity, text, title, names)


QUESTION = "Who was the father of the director of Kolya?"
KOLYA = passage(
    1, 0.70, "Kolya", "Kolya is a 1996 Czech film directed by Jan Svěrák.", "Kolya", "Jan Svěrák"
)
# Near the question, but about the film again: it adds nothing the first did not say.
KOLYA_AGAIN = passage(2, 0.66, "Kolya (soundtrack)", "The film Kolya won an Oscar.", "Kolya")
# The second hop: far from the question on its own, linked to the first by its title.
SVERAK = passage(
    3, 0.40, "Jan Svěrák", "Jan Svěrák is the son of Zdeněk Svěrák, his father.", "Zdeněk Svěrák"
)
UNRELATED = passage(4, 0.45, "Prague", "Prague is the capital of the Czech Republic.", "Prague")


def ids(hits: list[ChunkHit]) -> list[str]:
    return [h.chunk_id for h in hits]


def test_the_second_hop_follows_the_passage_that_names_it() -> None:
    chosen = choose(QUESTION, [KOLYA, KOLYA_AGAIN, SVERAK, UNRELATED], 2)
    assert ids(chosen) == ["c1", "c3"]


def test_one_by_one_similarity_would_have_missed_it() -> None:
    by_similarity = sorted([KOLYA, KOLYA_AGAIN, SVERAK, UNRELATED], key=lambda c: -c.similarity)
    assert [c.hit.chunk_id for c in by_similarity[:2]] == ["c1", "c2"]


def test_a_comparison_gets_a_passage_for_each_name() -> None:
    question = "Which is older, the Zorvex bridge or the Quellin tower?"
    zorvex = passage(1, 0.60, "Zorvex bridge", "The Zorvex bridge was built in 1820.", "Zorvex")
    zorvex_2 = passage(2, 0.58, "Zorvex", "The Zorvex bridge crosses a river.", "Zorvex")
    quellin = passage(3, 0.50, "Quellin tower", "The Quellin tower dates from 1790.", "Quellin")
    # Quellin's words are the rarer among the candidates: its passage comes first.
    assert ids(choose(question, [zorvex, zorvex_2, quellin], 2)) == ["c3", "c1"]


def test_links_go_both_ways_and_ignore_a_parenthesis_in_the_title() -> None:
    film = passage(1, 0.5, "Roxie Hart (film)", "A film.", "William A. Wellman")
    director = passage(2, 0.5, "William A. Wellman", "He directed Roxie Hart.", "Roxie Hart")
    assert linked(film, director) and linked(director, film)
    assert not linked(film, UNRELATED)


def test_every_candidate_is_returned_once_in_order_with_falling_scores() -> None:
    pool = [KOLYA, KOLYA_AGAIN, SVERAK, UNRELATED]
    chosen = choose(QUESTION, pool, 10)
    assert sorted(ids(chosen)) == ["c1", "c2", "c3", "c4"]
    scores = [h.score for h in chosen]
    assert scores == sorted(scores, reverse=True)
    assert [h.document_id for h in chosen] == [f"d{i[1:]}" for i in ids(chosen)]


def test_nothing_to_choose_from_and_k_zero() -> None:
    assert choose(QUESTION, [], 5) == []
    assert choose(QUESTION, [KOLYA], 0) == []


def test_a_question_of_function_words_only_still_ranks_by_similarity() -> None:
    chosen = choose("Who is it?", [UNRELATED, SVERAK], 2)
    assert ids(chosen) == ["c4", "c3"]


def test_ties_keep_the_candidates_order() -> None:
    a = passage(1, 0.5, "", "same words", "")
    b = passage(2, 0.5, "", "same words", "")
    assert ids(choose("same words", [a, b], 2)) == ["c1", "c2"]
