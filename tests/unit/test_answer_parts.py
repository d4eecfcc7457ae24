"""The pieces of an answer that need no store: citation checks, question entity fits,
the question types, and the extractive generator (on the real spaCy model)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.adapters.spacy_extractor import SpacyExtractor
from app.domain.models import Chunk, ChunkHit, Entity
from app.ports.generator import Generated, GeneratedCitation, Passage
from app.services.answer_context import ContextPassage
from app.services.citations import best_sentence, checked_citations, sentences
from app.services.extractive_generator import NOTHING_FOUND, ExtractiveGenerator, asks_for
from app.services.question_entities import MIN_FIT, best_fit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ADA_TEXT = (
    "Ada Lovelace was an English mathematician. She worked with Charles Babbage on the "
    "Analytical Engine in London. She was born in 1815."
)
CURIE_TEXT = "Marie Curie won the Nobel Prize in Physics in 1903. She was born in Warsaw."


def passage_of(chunk_id: str, text: str, score: float = 0.9) -> ContextPassage:
    chunk = Chunk(chunk_id, "doc_" + chunk_id, 0, text, 0, len(text), len(text.split()))
    return ContextPassage(ChunkHit(chunk_id, chunk.document_id, score), chunk, "Title")


def entity(name: str, *aliases: str, type: str = "PERSON") -> Entity:
    return Entity("ent_" + name, name.lower() + "|" + type, name, type, aliases, 1)


# --- citations -------------------------------------------------------------------------


def test_a_citation_outside_the_context_is_dropped_and_a_bad_quote_replaced() -> None:
    context = [passage_of("c1", ADA_TEXT, 0.8), passage_of("c2", CURIE_TEXT, 0.7)]
    claimed = (
        GeneratedCitation(0),
        GeneratedCitation(3),
        GeneratedCitation(-1, "x"),
        GeneratedCitation(2, "won the Nobel Prize"),
        GeneratedCitation(1, "a quote the passage does not hold"),
        GeneratedCitation(2, "won the Nobel Prize"),  # the same twice: once
    )
    cited = checked_citations(claimed, context, "She was born in 1815.")
    assert [(c.chunk_id, c.quote, c.score) for c in cited] == [
        ("c2", "won the Nobel Prize", 0.7),
        ("c1", "She was born in 1815.", 0.8),
    ]
    for c in cited:
        assert c.quote in (ADA_TEXT if c.chunk_id == "c1" else CURIE_TEXT)
        assert c.document_id == "doc_" + c.chunk_id


def test_no_quote_takes_the_sentence_sharing_most_words_with_the_answer() -> None:
    context = [passage_of("c1", ADA_TEXT)]
    cited = checked_citations((GeneratedCitation(1, "  "),), context, "Charles Babbage")
    assert cited[0].quote == "She worked with Charles Babbage on the Analytical Engine in London."


def test_sentences_are_exact_substrings_and_a_text_without_ends_is_one() -> None:
    parts = sentences("  One. Two!  Three?\nFour")
    assert parts == ["One.", "Two!", "Three?", "Four"]
    assert best_sentence("no sentence end here", "anything") == "no sentence end here"
    assert best_sentence("", "x") == ""


# --- question entities ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "name", "fits"),
    [
        ("Who did Ada Lovelace work with?", "Ada Lovelace", True),
        ("who did ada lovelace work with", "Ada Lovelace", True),  # case
        ("Who did Ada Lovelase work with?", "Ada Lovelace", True),  # a typo
        ("Where was Marie Skłodowska born?", "Marie Skłodowska", True),
        ("Where was Marie Sklodowska born?", "Marie Skłodowska", True),  # ł vs l: fuzzy
        ("Who wrote about engines?", "Ada Lovelace", False),
        ("What is the capital?", "The", False),  # a name of stop words never fits
    ],
)
def test_a_name_fits_a_run_of_the_questions_words(question: str, name: str, fits: bool) -> None:
    from app.domain.words import words

    assert (best_fit(entity(name), words(question)) >= MIN_FIT) is fits


def test_an_alias_fits_when_the_name_does_not() -> None:
    from app.domain.words import words

    ada = entity("Augusta Ada King", "Ada Lovelace")
    assert best_fit(ada, words("What did Ada Lovelace write?")) == 100.0


@pytest.mark.parametrize(
    ("question", "types"),
    [
        ("Who founded the company?", ("PERSON", "ORG", "NORP")),
        ("When was she born?", ("DATE", "TIME")),
        ("In which year was it built?", ("DATE", "TIME")),
        ("Where is the Louvre?", ("GPE", "LOC", "FAC")),
        ("How many moons has Mars?", ("CARDINAL", "QUANTITY", "MONEY", "PERCENT")),
        ("Is Paris in France?", ()),
        ("", ()),
    ],
)
def test_the_opening_words_say_what_type_is_asked_for(question: str, types: tuple[str]) -> None:
    assert asks_for(question) == types


# --- the extractive generator -----------------------------------------------------------


@pytest.fixture(scope="module")
def generator() -> ExtractiveGenerator:
    extractor = SpacyExtractor()
    extractor.load()
    return ExtractiveGenerator(extractor)


def passages(*texts: str) -> list[Passage]:
    return [Passage(n, f"c{n}", f"d{n}", "Title", t) for n, t in enumerate(texts, start=1)]


async def collect(g: ExtractiveGenerator, question: str, given: list[Passage]) -> list[object]:
    return [item async for item in g.stream(question, given)]


async def test_it_answers_with_the_entity_asked_for_and_cites_its_sentence(
    generator: ExtractiveGenerator,
) -> None:
    given = passages(CURIE_TEXT, ADA_TEXT)
    items = await collect(generator, "When was Ada Lovelace born?", given)
    assert isinstance(items[-1], Generated) and len(items) == 2
    answer = items[-1]
    assert items[0] == answer.text == "1815"
    assert answer.supported and answer.model == "extractive"
    assert answer.citations == (GeneratedCitation(2, "She was born in 1815."),)
    assert answer.citations[0].quote in ADA_TEXT


async def test_a_person_question_skips_the_names_the_question_holds(
    generator: ExtractiveGenerator,
) -> None:
    answer = generator.answer("Who did Ada Lovelace work with?", passages(ADA_TEXT))
    assert answer.text == "Charles Babbage"
    assert answer.citations[0].quote.startswith("She worked with Charles Babbage")


async def test_without_an_asked_type_the_sentence_is_the_answer(
    generator: ExtractiveGenerator,
) -> None:
    answer = generator.answer("What did Marie Curie win?", passages(ADA_TEXT, CURIE_TEXT))
    assert answer.text == "Marie Curie won the Nobel Prize in Physics in 1903."
    assert answer.citations[0].passage == 2


@pytest.mark.parametrize(
    ("question", "given"),
    [
        ("What is the boiling point of tungsten?", passages(ADA_TEXT, CURIE_TEXT)),
        ("When was Ada Lovelace born?", []),
        ("What is it?", passages(ADA_TEXT)),  # stop words only: nothing to look for
        ("???", passages(ADA_TEXT)),
    ],
)
async def test_it_says_plainly_when_nothing_supports_an_answer(
    generator: ExtractiveGenerator, question: str, given: list[Passage]
) -> None:
    items = await collect(generator, question, given)
    answer = items[-1]
    assert isinstance(answer, Generated)
    assert items[0] == answer.text == NOTHING_FOUND
    assert not answer.supported and answer.citations == ()
