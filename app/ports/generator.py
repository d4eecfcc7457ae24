"""Generator: turns a question and numbered context passages into a cited answer.

Two kinds stand behind this port: an extractive one (no LLM, picks spans from the
passages) and an LLM one (Ollama). Both stream: ``stream`` yields text as it is produced
and ends with one ``Generated``. What a generator says it cites is checked by the answer
service (a number outside the context is dropped, a quote that is not an exact substring
of the cited passage is replaced), so an adapter only reports what it produced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Passage:
    """A context passage as handed to a generator, numbered from 1 in context order."""

    number: int
    chunk_id: str
    document_id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class GeneratedCitation:
    """A passage the answer rests on; ``quote`` is the supporting text the generator
    names (may be empty: the service then picks the passage's best sentence)."""

    passage: int
    quote: str = ""


@dataclass(frozen=True, slots=True)
class Generated:
    """The finished answer. ``supported`` is False when nothing in the passages answers
    the question (the text then says so plainly)."""

    text: str
    citations: tuple[GeneratedCitation, ...]
    model: str
    supported: bool = True


class Generator(Protocol):
    name: str  # the model named in Answer.model

    async def start(self) -> None:
        """Connect or load what the generator needs (idempotent)."""

    async def close(self) -> None: ...

    def stream(self, question: str, passages: Sequence[Passage]) -> AsyncIterator[str | Generated]:
        """Text deltas as they are produced, then exactly one ``Generated`` (last).
        Failures are KGErrors: UnavailableError when the model server cannot be reached
        or times out."""
