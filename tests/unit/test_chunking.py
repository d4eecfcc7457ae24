"""Chunking: exact offsets, full coverage, budgets, overlap and over-long sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

import pytest

from app.adapters.sentence_transformer_embedder import SentenceTransformerEmbedder
from app.pipeline.chunking import TextChunk, chunk_text
from app.ports.models import Span

_SENTENCE = re.compile(r"[^.!?\s][^.!?]*[.!?]*")


def sentences_of(text: str) -> list[Span]:
    """A plain regex sentence splitter: enough for tests, no model needed."""
    spans = []
    for m in _SENTENCE.finditer(text):
        end = m.start() + len(m.group().rstrip())
        spans.append(Span(m.start(), end))
    return spans


class WordCounter:
    """Counts whitespace-separated words, and records each call's batch size."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, texts: Sequence[str]) -> list[int]:
        self.calls.append(len(texts))
        return [len(t.split()) for t in texts]


def numbered(count: int, words: int = 5) -> str:
    """``count`` sentences of ``words`` words each: "S0 w w w end."."""
    filler = " ".join(["w"] * (words - 2))
    return " ".join(f"S{i} {filler} end." for i in range(count))


def assert_well_formed(text: str, chunks: list[TextChunk]) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert c.text
        assert c.text == c.text.strip()
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts)), "every chunk starts after the previous one"


def assert_covers(text: str, chunks: list[TextChunk]) -> None:
    covered = bytearray(len(text))
    for c in chunks:
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()]
    assert not missing, f"uncovered characters at {missing[:5]}"


def test_sentences_pack_greedily_within_the_target() -> None:
    text = numbered(40)  # 40 sentences of 5 words
    counter = WordCounter()
    chunks = chunk_text(text, sentences_of(text), counter, target_tokens=22, overlap_tokens=0)
    assert_well_formed(text, chunks)
    assert_covers(text, chunks)
    assert [c.token_count for c in chunks] == [20] * 10  # 4 sentences each; a 5th won't fit
    for c in chunks:
        assert c.token_count == len(c.text.split())
        assert c.text.endswith("end.")
    # Without overlap the chunks are disjoint and consecutive.
    for before, after in pairwise(chunks):
        assert before.end < after.start
    assert counter.calls == [40], "one batched count for all sentences"


def test_every_sentence_is_whole_in_some_chunk() -> None:
    text = numbered(50, words=7)
    chunks = chunk_text(text, sentences_of(text), WordCounter(), 30, 10)
    for s in sentences_of(text):
        assert any(c.start <= s.start and s.end <= c.end for c in chunks)


def test_next_chunk_starts_with_trailing_sentences_that_fit_the_overlap() -> None:
    text = numbered(30)  # 5 tokens a sentence
    chunks = chunk_text(text, sentences_of(text), WordCounter(), 20, 11)
    assert_well_formed(text, chunks)
    assert all(c.token_count <= 20 for c in chunks)
    for before, after in pairwise(chunks):
        shared = text[after.start : before.end]
        assert before.text.endswith(shared)
        # Two whole sentences (10 tokens) fit in 11; a third would not.
        assert len(shared.split()) == 10
        assert shared.startswith("S")
        assert shared.endswith("end.")
    assert chunks[-1].end == len(text)


def test_overlap_never_repeats_a_whole_chunk() -> None:
    # Each chunk holds a single sentence: carrying it over would make no progress.
    text = numbered(6, words=8)
    chunks = chunk_text(text, sentences_of(text), WordCounter(), 10, 9)
    assert [c.text.split()[0] for c in chunks] == [f"S{i}" for i in range(6)]


def test_overlap_leaves_room_for_the_next_sentence() -> None:
    # The carried sentences (4 + 4) plus the next one (9) would pass the target of 16.
    text = "A a a a. B b b b. C c c c c c c c c. D d."
    chunks = chunk_text(text, sentences_of(text), WordCounter(), 16, 8)
    assert [c.text for c in chunks] == ["A a a a. B b b b.", "B b b b. C c c c c c c c c. D d."]


def test_a_sentence_over_the_target_splits_on_words() -> None:
    long = " ".join(f"w{i}" for i in range(1000)) + "."
    text = f"Short start. {long} Short end."
    counter = WordCounter()
    chunks = chunk_text(text, sentences_of(text), counter, 50, 8)
    assert_well_formed(text, chunks)
    assert_covers(text, chunks)
    assert all(c.token_count <= 50 for c in chunks)
    assert all(c.token_count == len(c.text.split()) for c in chunks)
    for c in chunks:  # pieces begin and end on word boundaries
        assert c.start == 0 or text[c.start - 1] == " "
        assert c.end == len(text) or text[c.end] == " "
    pieces = [c for c in chunks if c.text.startswith("w")]
    for before, after in pairwise(pieces):
        assert before.end > after.start, "pieces of one sentence overlap"
        assert len(text[after.start : before.end].split()) <= 8
    assert counter.calls == [3, 1000], "one count for the sentences, one for the words"


def test_a_word_over_the_target_splits_into_characters() -> None:
    def count_chars(texts: Sequence[str]) -> list[int]:
        return [len(t.replace(" ", "")) for t in texts]

    blob = "x" * 500
    text = f"See {blob} here."
    chunks = chunk_text(text, [Span(0, len(text))], count_chars, 64, 0)
    assert_well_formed(text, chunks)
    assert_covers(text, chunks)
    assert all(c.token_count <= 64 for c in chunks)
    assert all(c.token_count == count_chars([c.text])[0] for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_short_text_is_one_chunk() -> None:
    text = "  Just one short sentence.  "
    chunks = chunk_text(text, sentences_of(text), WordCounter())
    assert chunks == [TextChunk(0, 2, 26, "Just one short sentence.", 4)]


def test_empty_and_blank_texts_make_no_chunks_and_count_nothing() -> None:
    counter = WordCounter()
    assert chunk_text("", [], counter) == []
    assert chunk_text(" \n\n\t ", [Span(0, 5)], counter) == []
    assert counter.calls == []


def test_text_between_or_without_sentences_is_still_chunked() -> None:
    text = "Heading without stop\n\nA sentence here. trailing words"
    only_middle = [Span(text.index("A"), text.index("here.") + 5)]
    chunks = chunk_text(text, only_middle, WordCounter(), 256, 0)
    assert [c.text for c in chunks] == [text]
    assert chunk_text(text, [], WordCounter()) == [TextChunk(0, 0, len(text), text, 8)]


def test_overlapping_and_unsorted_sentences_are_merged() -> None:
    text = "One two three. Four five six."
    spans = [Span(15, 29), Span(0, 9), Span(4, 14), Span(6, 6)]
    chunks = chunk_text(text, spans, WordCounter(), 3, 0)
    assert [c.text for c in chunks] == ["One two three.", "Four five six."]


def test_unicode_offsets_are_code_points() -> None:
    text = "Café ☕ in 東京 is naïve. Ünïcödé 👩‍👩‍👧 family here! Last one."
    chunks = chunk_text(text, sentences_of(text), WordCounter(), 6, 0)
    assert_well_formed(text, chunks)
    assert_covers(text, chunks)
    assert [c.text for c in chunks] == [
        "Café ☕ in 東京 is naïve.",
        "Ünïcödé 👩‍👩‍👧 family here! Last one.",
    ]


@pytest.mark.parametrize(
    ("target", "overlap", "message"),
    [(0, 0, "target_tokens"), (-5, 0, "target_tokens"), (10, -1, "overlap_tokens")],
)
def test_bad_budgets_are_refused(target: int, overlap: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chunk_text("Some text.", [], WordCounter(), target, overlap)


@pytest.mark.parametrize("span", [Span(-1, 3), Span(3, 2), Span(0, 11)])
def test_sentences_outside_the_text_are_refused(span: Span) -> None:
    with pytest.raises(ValueError, match="outside"):
        chunk_text("Some text.", [span], WordCounter())


def test_a_counter_returning_the_wrong_number_of_counts_is_refused() -> None:
    with pytest.raises(ValueError, match="counts for"):
        chunk_text("One. Two.", [Span(0, 4), Span(5, 9)], lambda texts: [1])


def test_budgets_hold_in_the_real_embedder_tokens() -> None:
    """The model's own tokenizer (no model weights needed): every chunk fits, and its
    count is what the tokenizer says of the chunk's text."""
    embedder = SentenceTransformerEmbedder()
    paragraph = (
        "Marie Skłodowska-Curie was a Polish and naturalised-French physicist and chemist "
        "who conducted pioneering research on radioactivity. She was the first woman to win "
        "a Nobel Prize, the first person to win a Nobel Prize twice, and the only person to "
        "win a Nobel Prize in two scientific fields. Her husband, Pierre Curie, was a "
        "co-winner of her first Nobel Prize. In 1911 she won the Nobel Prize in Chemistry "
        "(for the discovery of polonium and radium). "
    )
    text = "\n\n".join(paragraph for _ in range(30)) + " " + "-".join(["x1y2"] * 400) + "."
    chunks = chunk_text(text, sentences_of(text), embedder.count_tokens, 128, 32)
    assert_well_formed(text, chunks)
    assert_covers(text, chunks)
    real = embedder.count_tokens([c.text for c in chunks])
    assert real == [c.token_count for c in chunks]
    assert max(real) <= 128
    assert len(chunks) > 10
    assert not embedder.loaded, "counting tokens does not load the model"
