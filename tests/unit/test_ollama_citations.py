"""Reading an LLM's answer (citations, refusals) and building its prompt (ollama_prompt),
and the settings OllamaGenerator refuses before it talks to any server."""

from __future__ import annotations

import pytest

from app.adapters.ollama_generator import OllamaGenerator
from app.adapters.ollama_prompt import (
    EXAMPLES,
    INSTRUCTIONS,
    MAX_RANGE,
    NOT_IN_PASSAGES,
    answer_head,
    build_prompt,
    cited_numbers,
    read_answer,
    refuses,
)
from app.config import LlmSettings
from app.domain.errors import ConfigurationError
from app.ports.generator import GeneratedCitation, Passage

FIVE = range(1, 6)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Paris is the capital [1].", (1,)),
        ("Both say so [1, 3].", (1, 3)),
        ("Both say so [1,3] and [4 ; 5].", (1, 3, 4, 5)),
        ("Adjacent markers [1][2] and spaced [ 3 ] [4].", (1, 2, 3, 4)),
        ("A range [2-4] and an en dash [1\u20132].", (2, 3, 4, 1)),
        ("Named [Passage 2], [passages 1, 3] and [Source 5].", (2, 1, 3, 5)),
        ("A list with and [1, and 4].", (1, 4)),
        ("First mention wins: [3] then [1] then [3] again [1][3].", (3, 1)),
        ("Across lines:\n- one [2]\n- two [5]", (2, 5)),
    ],
)
def test_every_marker_form_is_read_in_order_of_first_mention(
    text: str, expected: tuple[int, ...]
) -> None:
    assert cited_numbers(text, FIVE) == expected


def test_numbers_that_name_no_passage_are_dropped() -> None:
    assert cited_numbers("Yes [0], [6], [2] and [99].", FIVE) == (2,)
    assert cited_numbers("A list [1, 7, 5].", FIVE) == (1, 5)
    assert cited_numbers("A range past the end [4-8].", FIVE) == (4, 5)
    # Valid numbers are the ones the prompt showed, not 1..n: passages 2 and 4 only.
    assert cited_numbers("[1][2][3][4]", {2, 4}) == (2, 4)


def test_backwards_or_huge_ranges_and_non_markers_cite_nothing() -> None:
    assert cited_numbers(f"[5-1] and [1-{MAX_RANGE + 2}]", FIVE) == ()
    not_markers = "In 2021 (see 1) the list [a], [1a], [1.5], [x 2], [], [ ], 1] and [2 held."
    assert cited_numbers(not_markers, FIVE) == ()


def test_no_markers_is_a_supported_answer_without_citations() -> None:
    answer = read_answer("Paris is the capital of France.", FIVE)
    assert answer.citations == ()
    assert answer.supported  # the answer service then judges it: nothing cited


def test_citations_are_generated_citations_without_quotes() -> None:
    answer = read_answer("It opened in 1889 [2] in Paris [1].", FIVE)
    assert answer.citations == (GeneratedCitation(passage=2), GeneratedCitation(passage=1))
    assert all(c.quote == "" for c in answer.citations)
    assert answer.supported


@pytest.mark.parametrize(
    "text",
    [
        NOT_IN_PASSAGES,
        NOT_IN_PASSAGES.upper(),
        f"  {NOT_IN_PASSAGES}\n",
        "The passages don't answer this question.",
        "The passages do not mention who built it.",
        "Sorry, the context does not contain that information.",
        "The passage doesn\u2019t say.",
        f"{NOT_IN_PASSAGES} [1]",  # a citation of the refusal itself does not count
        f"{NOT_IN_PASSAGES} [2][3]\nThe passages do not say when either.",
    ],
)
def test_the_instructed_refusal_and_close_variants_are_unsupported(text: str) -> None:
    assert refuses(text)
    answer = read_answer(text, FIVE)
    assert not answer.supported
    assert answer.citations == ()


def test_a_refusal_beside_a_cited_claim_still_answers() -> None:
    text = "The tower is 330 m tall [2]. The passages do not say who painted it [3]."
    answer = read_answer(text, FIVE)
    assert answer.supported
    assert answer.citations == (GeneratedCitation(passage=2),)


def test_an_empty_answer_is_unsupported() -> None:
    for text in ("", "   \n"):
        answer = read_answer(text, FIVE)
        assert not answer.supported
        assert answer.citations == ()


def test_ordinary_negations_are_not_refusals() -> None:
    assert not refuses("The bridge does not carry trains [1].")
    assert not refuses("Passages of the river do not freeze.")  # no verb of saying
    assert read_answer("The bridge does not carry trains [1].", FIVE).supported


def _passage(number: int, text: str, title: str = "Doc") -> Passage:
    return Passage(
        number=number, chunk_id=f"c{number}", document_id=f"d{number}", title=title, text=text
    )


def test_prompt_numbers_passages_with_titles_then_asks_the_question() -> None:
    passages = [_passage(1, "Paris is\n the capital.", "France"), _passage(2, "Rome.", "  ")]
    prompt = build_prompt("  What is the capital? ", passages, 4096, 512)
    (message,) = prompt.messages
    assert message["role"] == "user"
    content = message["content"]
    assert content.startswith(f"{INSTRUCTIONS}\n\n{EXAMPLES}Passages:\n")
    assert NOT_IN_PASSAGES in INSTRUCTIONS and NOT_IN_PASSAGES in EXAMPLES
    assert content.endswith(
        "Passages:\n[1] (France) Paris is the capital.\n"  # whitespace collapsed
        "[2] (untitled) Rome.\n"
        "Question: What is the capital?"
    )
    assert prompt.numbers == {1, 2}


def test_prompt_leaves_out_what_does_not_fit_the_context_window() -> None:
    long = " ".join(["word"] * 2000)  # 10,000 characters
    passages = [_passage(1, long), _passage(2, long), _passage(3, "short")]
    prompt = build_prompt("Q?", passages, 2048, 512)
    content = prompt.messages[0]["content"]
    ours = content.removeprefix(f"{INSTRUCTIONS}\n\n{EXAMPLES}")
    # (2048 - 512 - 400) tokens * 3 chars: room for part of passage 1 only.
    assert prompt.numbers == {1}
    assert ours.startswith("Passages:\n[1] (Doc) word word")
    assert ours.endswith(" ...\nQuestion: Q?")
    assert "[2]" not in ours and "[3]" not in ours
    assert len(content) < (2048 - 512) * 3


def test_prompt_without_passages_says_so() -> None:
    prompt = build_prompt("Who?", [], 4096, 512)
    assert prompt.numbers == frozenset()
    assert prompt.messages[0]["content"].endswith("Passages:\n(no passages)\nQuestion: Who?")


@pytest.mark.parametrize(
    ("buffer", "final", "expected"),
    [
        ("Answer: Paris", False, "Paris"),
        ("  answer:\n  Paris [1]", False, "Paris [1]"),
        ("ANSWER:Paris", False, "Paris"),
        ("Ans", False, None),  # could still become the label
        ("Answer:", False, None),  # the label, the answer not yet begun
        ("Answer:  ", False, None),
        ("Answer:", True, ""),  # the stream ended on the label: nothing was said
        ("Ans", True, "Ans"),
        ("", False, None),
        ("Paris is", False, "Paris is"),
        ("An answer", False, "An answer"),  # not the label after all
        ("  \nParis", False, "Paris"),
    ],
)
def test_answer_head_drops_a_leading_answer_label(
    buffer: str, final: bool, expected: str | None
) -> None:
    assert answer_head(buffer, final) == expected


def test_settings_that_leave_no_room_for_passages_are_refused() -> None:
    cramped = LlmSettings(context_window=1024, max_answer_tokens=512)
    with pytest.raises(ConfigurationError, match="KG_LLM__CONTEXT_WINDOW \\(1024\\)"):
        OllamaGenerator("http://127.0.0.1:11434", cramped)
    fine = OllamaGenerator("http://127.0.0.1:11434", LlmSettings())
    assert fine.name == "ollama:gemma3:270m"


def test_a_host_that_is_not_http_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        OllamaGenerator("ollama://127.0.0.1:11434", LlmSettings())
