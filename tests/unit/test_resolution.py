"""Entity resolution on hand-built extractor output (no spaCy needed)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from app.domain.ids import chunk_id, entity_id, relation_id
from app.domain.models import Chunk, Entity
from app.pipeline.resolution import (
    ResolvedDocument,
    canonical_key,
    canonical_name,
    resolve_document,
)
from app.ports.models import ExtractedMention, ExtractedRelation, ExtractedText, Span

DOC = "doc_test"
_SENTENCE = re.compile(r"[^.!?\s][^.!?]*[.!?]*")

Rel = tuple[int, int, str, float]


def chunk(text: str, start: int, end: int, index: int) -> Chunk:
    return Chunk(chunk_id(DOC, index), DOC, index, text[start:end], start, end, 0)


def extract(
    text: str, mentions: Sequence[tuple[str, str]], relations: Sequence[Rel] = ()
) -> ExtractedText:
    """The extractor's output for ``text``: each (surface, label) is found after the
    previous one; sentences come from a regex splitter."""
    sentences = tuple(
        Span(m.start(), m.start() + len(m.group().rstrip())) for m in _SENTENCE.finditer(text)
    )
    found = []
    pos = 0
    for surface, label in mentions:
        start = text.index(surface, pos)
        pos = start + len(surface)
        sentence = next(i for i, s in enumerate(sentences) if s.start <= start < s.end)
        found.append(ExtractedMention(start, pos, surface, label, sentence))
    rels = tuple(ExtractedRelation(h, t, kind, conf) for h, t, kind, conf in relations)
    return ExtractedText(sentences, tuple(found), rels)


def resolve_one(
    text: str, mentions: Sequence[tuple[str, str]], relations: Sequence[Rel] = ()
) -> ResolvedDocument:
    return resolve_document(
        DOC, [chunk(text, 0, len(text), 0)], [extract(text, mentions, relations)]
    )


def by_name(resolved: ResolvedDocument) -> dict[str, Entity]:
    return {e.name: e for e in resolved.entities}


@pytest.mark.parametrize(
    ("name", "label", "key"),
    [
        ("Barack Obama", "PERSON", "barack obama|PERSON"),
        ("  Barack\n  OBAMA ", "PERSON", "barack obama|PERSON"),
        ("Obama's", "PERSON", "obama|PERSON"),
        ("Obama’s", "PERSON", "obama|PERSON"),
        ("the United Nations", "ORG", "united nations|ORG"),
        ("The Hague", "GPE", "hague|GPE"),
        ("“Apple Inc.”", "ORG", "apple|ORG"),
        ("Apple, Inc.", "ORG", "apple|ORG"),
        ("Foo Co. Ltd", "ORG", "foo|ORG"),
        ("BigCorp plc", "ORG", "bigcorp|ORG"),
        ("Acme Corp", "PRODUCT", "acme corp|PRODUCT"),  # suffixes are an ORG matter
        ("Ltd", "ORG", "ltd|ORG"),  # never stripped to nothing
        ("ＡＢＣ Ｎｅｗｓ", "ORG", "abc news|ORG"),  # NFKC folds full-width letters
        ("STRASSE", "LOC", "strasse|LOC"),
        ("Straße", "LOC", "strasse|LOC"),  # casefold, not lower
        ("C#", "LANGUAGE", "c#|LANGUAGE"),
        ("C++", "LANGUAGE", "c++|LANGUAGE"),
        ("(Paris)", "GPE", "paris|GPE"),
        ("Jones'", "PERSON", "jones|PERSON"),
    ],
)
def test_canonical_keys(name: str, label: str, key: str) -> None:
    assert canonical_key(name, label) == key


@pytest.mark.parametrize("name", ["", "   ", "The", "!!", "“”", "'s"])
def test_names_that_normalise_to_nothing_have_no_key(name: str) -> None:
    assert canonical_name(name, "ORG") == ""
    assert canonical_key(name, "ORG") is None


@pytest.mark.parametrize(
    "text",
    [
        "Barack Obama spoke first. Later Obama left.",
        "Obama spoke first. Later Barack Obama left.",
    ],
)
def test_a_last_name_joins_the_full_name_before_or_after_it(text: str) -> None:
    first, second = (
        ("Barack Obama", "Obama") if text.startswith("Barack") else ("Obama", "Barack Obama")
    )
    resolved = resolve_one(text, [(first, "PERSON"), (second, "PERSON")])
    assert len(resolved.entities) == 1
    obama = resolved.entities[0]
    assert obama.name == "Barack Obama"
    assert obama.key == "barack obama|PERSON"
    assert obama.id == entity_id("barack obama|PERSON")
    assert obama.aliases == ("Obama",)
    assert obama.mention_count == 2
    assert {m.entity_id for m in resolved.mentions} == {obama.id}


def test_a_first_name_and_chains_join_the_longest_form() -> None:
    text = "Barack Hussein Obama was born. Barack went on. Hussein Obama too."
    resolved = resolve_one(
        text,
        [("Barack Hussein Obama", "PERSON"), ("Barack", "PERSON"), ("Hussein Obama", "PERSON")],
    )
    assert [(e.name, e.mention_count) for e in resolved.entities] == [("Barack Hussein Obama", 3)]
    assert resolved.entities[0].aliases == ("Barack", "Hussein Obama")


def test_an_organisation_and_its_corporate_suffix_are_one_entity() -> None:
    text = "Apple Inc. makes phones. Apple sells them. APPLE INC. profits."
    resolved = resolve_one(text, [("Apple Inc.", "ORG"), ("Apple", "ORG"), ("APPLE INC.", "ORG")])
    assert len(resolved.entities) == 1
    apple = resolved.entities[0]
    assert apple.key == "apple|ORG"
    assert apple.name == "Apple Inc."  # the longest form, the first of equals
    assert apple.aliases == ("Apple", "APPLE INC.")
    assert apple.mention_count == 3


def test_a_short_name_fitting_two_people_stays_apart() -> None:
    text = "George Bush met Laura Bush. Bush spoke."
    resolved = resolve_one(
        text, [("George Bush", "PERSON"), ("Laura Bush", "PERSON"), ("Bush", "PERSON")]
    )
    names = by_name(resolved)
    assert set(names) == {"George Bush", "Laura Bush", "Bush"}
    assert all(e.mention_count == 1 and e.aliases == () for e in resolved.entities)


def test_names_of_different_types_do_not_join() -> None:
    text = "George Washington visited Washington."
    resolved = resolve_one(text, [("George Washington", "PERSON"), ("Washington", "GPE")])
    assert {(e.name, e.type) for e in resolved.entities} == {
        ("George Washington", "PERSON"),
        ("Washington", "GPE"),
    }


def test_mentions_get_document_offsets_and_overlap_duplicates_go() -> None:
    text = "Alice Smith founded Acme Corp. Alice Smith hired Bob Jones. Bob Jones left Acme."
    cut = text.index("Alice Smith hired")
    second_start = text.index("Alice Smith hired")  # chunks overlap on the middle sentence
    end_first = text.index("Bob Jones left") - 1
    first = chunk(text, 0, end_first, 0)
    second = chunk(text, second_start, len(text), 1)
    ex_first = extract(
        first.text,
        [
            ("Alice Smith", "PERSON"),
            ("Acme Corp", "ORG"),
            ("Alice Smith", "PERSON"),
            ("Bob Jones", "PERSON"),
        ],
        [(0, 1, "FOUNDED", 0.9), (2, 3, "HIRED", 0.6)],
    )
    ex_second = extract(
        second.text,
        [
            ("Alice Smith", "PERSON"),
            ("Bob Jones", "PERSON"),
            ("Bob Jones", "PERSON"),
            ("Acme", "ORG"),
        ],
        [(0, 1, "HIRED", 0.8), (2, 3, "LEFT", 0.7)],
    )
    # Given out of order: the chunk index decides which is earliest.
    resolved = resolve_document(DOC, [second, first], [ex_second, ex_first])

    for m in resolved.mentions:
        assert text[m.start : m.end] == m.text
        assert m.document_id == DOC
    spans = [(m.start, m.end) for m in resolved.mentions]
    assert len(spans) == len(set(spans)) == 6
    repeated = [m for m in resolved.mentions if m.start >= cut and m.end <= end_first]
    assert repeated
    assert all(m.chunk_id == first.id for m in repeated)
    last_bob = max(resolved.mentions, key=lambda m: m.start if m.text == "Bob Jones" else -1)
    assert last_bob.chunk_id == second.id

    names = by_name(resolved)
    assert names["Alice Smith"].mention_count == 2
    assert names["Bob Jones"].mention_count == 2
    assert names["Acme Corp"].mention_count == 2  # "Acme" joined "Acme Corp"

    hired = [r for r in resolved.relations if r.type == "HIRED"]
    assert len(hired) == 1
    assert hired[0].confidence == 0.8  # the best of the two extractions
    hired_evidence = [e for e in resolved.evidence if e.relation_id == hired[0].id]
    assert len(hired_evidence) == 1, "the same sentence seen in two chunks is one evidence"
    assert hired_evidence[0].chunk_id == first.id
    assert hired_evidence[0].text == "Alice Smith hired Bob Jones."
    assert hired_evidence[0].confidence == 0.8


def test_relations_are_remapped_onto_resolved_entities() -> None:
    text = "Barack Obama visited Hawaii. Obama was born in Hawaii."
    resolved = resolve_one(
        text,
        [("Barack Obama", "PERSON"), ("Hawaii", "GPE"), ("Obama", "PERSON"), ("Hawaii", "GPE")],
        [(0, 1, "VISITED", 0.5), (2, 3, "BORN_IN", 0.9), (2, 3, "VISITED", 0.7)],
    )
    obama = entity_id("barack obama|PERSON")
    hawaii = entity_id("hawaii|GPE")
    assert [(r.type, r.source_id, r.target_id, r.confidence) for r in resolved.relations] == [
        ("VISITED", obama, hawaii, 0.7),
        ("BORN_IN", obama, hawaii, 0.9),
    ]
    for r in resolved.relations:
        assert r.id == relation_id(r.source_id, r.type, r.target_id)
    visited = relation_id(obama, "VISITED", hawaii)
    assert sorted(
        (e.text, e.confidence) for e in resolved.evidence if e.relation_id == visited
    ) == [
        ("Barack Obama visited Hawaii.", 0.5),
        ("Obama was born in Hawaii.", 0.7),
    ]
    assert all(e.document_id == DOC for e in resolved.evidence)


def test_relations_of_an_entity_with_itself_are_dropped() -> None:
    text = "Barack Obama, known as Obama, met Joe Biden."
    resolved = resolve_one(
        text,
        [("Barack Obama", "PERSON"), ("Obama", "PERSON"), ("Joe Biden", "PERSON")],
        [(0, 1, "ALIAS_OF", 0.9), (1, 2, "MET", 0.8)],
    )
    assert [r.type for r in resolved.relations] == ["MET"]
    assert [e.relation_id for e in resolved.evidence] == [resolved.relations[0].id]


def test_identical_sentences_in_one_chunk_are_one_evidence() -> None:
    text = "Ann met Bo. Ann met Bo."
    resolved = resolve_one(
        text,
        [("Ann", "PERSON"), ("Bo", "PERSON"), ("Ann", "PERSON"), ("Bo", "PERSON")],
        [(0, 1, "MET", 0.4), (2, 3, "MET", 0.6)],
    )
    assert len(resolved.relations) == 1
    assert [(e.text, e.confidence) for e in resolved.evidence] == [("Ann met Bo.", 0.6)]


def test_mentions_without_a_usable_name_are_skipped_with_their_relations() -> None:
    text = "The said it. Acme agreed."
    resolved = resolve_one(text, [("The", "ORG"), ("Acme", "ORG")], [(0, 1, "TOLD", 0.5)])
    assert [e.name for e in resolved.entities] == ["Acme"]
    assert [m.text for m in resolved.mentions] == ["Acme"]
    assert resolved.relations == ()
    assert resolved.evidence == ()


def test_an_empty_document_resolves_to_nothing() -> None:
    assert resolve_document(DOC, [], []) == ResolvedDocument((), (), (), ())


def test_mismatched_inputs_are_refused() -> None:
    text = "Ann met Bo."
    c = chunk(text, 0, len(text), 0)
    with pytest.raises(ValueError, match="extractions for"):
        resolve_document(DOC, [c], [])
    outside = ExtractedText((Span(0, 11),), (ExtractedMention(5, 40, "Bo", "PERSON", 0),), ())
    with pytest.raises(ValueError, match="outside"):
        resolve_document(DOC, [c], [outside])
    no_sentence = ExtractedText((Span(0, 11),), (ExtractedMention(0, 3, "Ann", "PERSON", 3),), ())
    with pytest.raises(ValueError, match="no sentence"):
        resolve_document(DOC, [c], [no_sentence])
    bad_relation = extract(text, [("Ann", "PERSON"), ("Bo", "PERSON")], [(0, 5, "MET", 0.5)])
    with pytest.raises(ValueError, match="no mention"):
        resolve_document(DOC, [c], [bad_relation])
