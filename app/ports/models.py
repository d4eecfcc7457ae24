"""The machine-learning ports: embedder and extractor.

Both load their models lazily, once per process (``load``), and are blocking: callers run
them in a worker thread so the event loop stays free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Embedder(Protocol):
    name: str

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """The longest input the model reads, in its tokens (longer is truncated)."""

    def load(self) -> None: ...

    @property
    def loaded(self) -> bool: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text in the model's tokenizer, without special tokens."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, batched."""


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ExtractedMention:
    """An entity mention; offsets are into the text handed to ``extract``."""

    start: int
    end: int
    text: str
    label: str
    sentence: int  # index into ExtractedText.sentences


@dataclass(frozen=True, slots=True)
class ExtractedRelation:
    """A relation between two mentions (indexes into ExtractedText.mentions)."""

    head: int
    tail: int
    type: str
    confidence: float


@dataclass(frozen=True, slots=True)
class ExtractedText:
    sentences: tuple[Span, ...]
    mentions: tuple[ExtractedMention, ...]
    relations: tuple[ExtractedRelation, ...]


class Extractor(Protocol):
    name: str

    def load(self) -> None: ...

    @property
    def loaded(self) -> bool: ...

    def sentences(self, texts: Sequence[str]) -> list[list[Span]]:
        """Sentence boundaries of each text (cheap: no NER, no parse)."""

    def extract(self, texts: Sequence[str]) -> list[ExtractedText]:
        """Entity mentions and the relations between mentions of one sentence."""

    def answer_spans(self, texts: Sequence[str]) -> list[ExtractedText]:
        """Sentences and every entity the model finds, values included (dates, numbers,
        amounts, which ``extract`` leaves out of the graph): the candidate answers of an
        extractive answer. No relations."""
