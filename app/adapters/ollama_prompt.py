"""The text contract with an LLM: the prompt it is given, and how its answer is read.

The prompt numbers the context passages ``[n] (title) text``, asks for an answer drawn
only from them, a ``[n]`` citation for each claim, and, when the passages hold no
answer, the fixed sentence ``NOT_IN_PASSAGES``; three worked examples show all of it.
Passages that would not fit the model's context window (with room left for the answer)
are left out, the last one cut short. A model may open with the examples' ``Answer:``
label: ``answer_head`` takes it off the start of the stream.

Reading the answer: models write the markers in several ways, all read here: ``[1]``,
``[1, 3]``, ``[1; 3]``, ``[1][2]``, ``[1-3]`` and ``[Passage 2]``. A number that names no
passage of the prompt is dropped; each passage is cited once, in order of first mention.
A refusal is the instructed sentence or a close variant ("the passages do not contain /
mention / say ..."). An answer is unsupported when it refuses and none of its other
sentences cites a passage (a model that refuses one part but answers another with a
citation still answered), or when it is empty. An unsupported answer cites nothing.

Pure functions, so all of it is tested without a model.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from app.ports.generator import GeneratedCitation, Passage

NOT_IN_PASSAGES = "The passages do not answer this question."
MAX_RANGE = 20  # a range marker wider than this ([1-99]) is not a citation
CHARS_PER_TOKEN = 3  # conservative for English (about 4): the budget errs on the short side
PROMPT_OVERHEAD_TOKENS = 400  # the instructions, the examples, the chat template
MIN_PASSAGE_CHARS = 200  # a passage cut shorter than this is left out instead

INSTRUCTIONS = (
    "Answer the question using only the numbered passages. Name the passage each claim "
    "comes from by its number in square brackets, like [1]. If the passages do not contain "
    f'the answer, reply exactly: "{NOT_IN_PASSAGES}"'
)
# Worked examples: small models follow a pattern far better than an instruction (Gemma 3
# 270M, a base model, answers and refuses as shown, and cites some of the time).
EXAMPLES = (
    "Example 1:\nPassages:\n[1] (Moon) The Moon orbits the Earth every 27 days.\n"
    "[2] (Mars) Mars is the fourth planet from the Sun.\n"
    "Question: Which planet is fourth from the Sun?\n"
    "Answer: According to passage [2], Mars is the fourth planet from the Sun.\n\n"
    "Example 2:\nPassages:\n[1] (Moon) The Moon orbits the Earth every 27 days.\n"
    "[2] (Mars) Mars is the fourth planet from the Sun.\n"
    "Question: How long does the Moon take to orbit the Earth?\n"
    "Answer: According to passage [1], the Moon orbits the Earth every 27 days.\n\n"
    "Example 3:\nPassages:\n[1] (Moon) The Moon orbits the Earth every 27 days.\n"
    "Question: Who was the first person on the Moon?\n"
    f"Answer: {NOT_IN_PASSAGES}\n\n"
)
_LABEL = "answer:"  # models echo the examples' label; the answer text starts after it

_NUMBER = r"\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?"
_MARKER = re.compile(
    rf"\[\s*(?:(?:passages?|sources?)\s*)?({_NUMBER}(?:\s*[,;]\s*(?:and\s+)?{_NUMBER})*)\s*\]",
    re.IGNORECASE,
)
_ITEM = re.compile(r"(\d{1,4})(?:\s*[-\u2013]\s*(\d{1,4}))?")
# The refusal with the rest of its sentence and any markers right after it.
_REFUSAL = re.compile(
    r"\b(?:passages?|context|sources?)\s+(?:do|does|did)\s*(?:not|n['\u2019]t)\s+"
    r"(?:answer|contain|mention|say|include|provide|state)\b[^.!?\n]*[.!?]?"
    r"(?:\s*\[[^\]\n]*\])*",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Prompt:
    """The chat messages to send, and the passage numbers they show the model."""

    messages: tuple[dict[str, str], ...]
    numbers: frozenset[int]


@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """What an answer's text cites, and whether it answers at all."""

    citations: tuple[GeneratedCitation, ...]
    supported: bool


def build_prompt(
    question: str, passages: Sequence[Passage], context_tokens: int, answer_tokens: int
) -> Prompt:
    """One user turn (Gemma and others have no system role): the instructions, the
    passages that fit in ``context_tokens`` beside the answer, then the question."""
    budget = (context_tokens - answer_tokens - PROMPT_OVERHEAD_TOKENS) * CHARS_PER_TOKEN
    budget -= len(question)
    blocks: list[str] = []
    numbers: set[int] = set()
    for passage in passages:
        head = f"[{passage.number}] ({passage.title.strip() or 'untitled'}) "
        text = " ".join(passage.text.split())
        room = budget - len(head) - 1
        if room < min(len(text), MIN_PASSAGE_CHARS):
            break
        if len(text) > room:
            text = text[:room].rsplit(" ", 1)[0] + " ..."
        blocks.append(head + text)
        numbers.add(passage.number)
        budget -= len(blocks[-1]) + 1
    body = "\n".join(blocks) if blocks else "(no passages)"
    content = f"{INSTRUCTIONS}\n\n{EXAMPLES}Passages:\n{body}\nQuestion: {question.strip()}"
    return Prompt(messages=({"role": "user", "content": content},), numbers=frozenset(numbers))


def answer_head(buffer: str, final: bool) -> str | None:
    """The start of the answer once it is known: ``buffer`` (the first text streamed)
    without leading space and without an ``Answer:`` label; None while the buffer could
    still be (the start of) that label and more text is coming."""
    text = buffer.lstrip()
    if text[: len(_LABEL)].lower() == _LABEL:
        text = text[len(_LABEL) :].lstrip()
        return text if text or final else None
    if not final and _LABEL.startswith(text.lower()):
        return None
    return text


def cited_numbers(text: str, valid: Collection[int]) -> tuple[int, ...]:
    """The passage numbers the ``[n]`` markers of ``text`` name, among ``valid``, each
    once, in order of first mention."""
    seen: dict[int, None] = {}
    for marker in _MARKER.finditer(text):
        for item in _ITEM.finditer(marker.group(1)):
            low = int(item.group(1))
            high = int(item.group(2)) if item.group(2) else low
            if high < low or high - low > MAX_RANGE:
                continue
            for number in range(low, high + 1):
                if number in valid:
                    seen.setdefault(number, None)
    return tuple(seen)


def refuses(text: str) -> bool:
    """Whether the text says the passages do not hold the answer."""
    return _REFUSAL.search(text) is not None


def read_answer(text: str, valid: Collection[int]) -> ReadAnswer:
    """Citations and support of a finished answer (see the module docstring)."""
    if not text.strip():
        return ReadAnswer(citations=(), supported=False)
    refused = refuses(text)
    numbers = cited_numbers(_REFUSAL.sub(" ", text) if refused else text, valid)
    if refused and not numbers:
        return ReadAnswer(citations=(), supported=False)
    return ReadAnswer(
        citations=tuple(GeneratedCitation(passage=n) for n in numbers), supported=True
    )
