"""The context handed to a generator: retrieved chunks, deduplicated, within a budget.

Chunks overlap (a window of tokens is repeated at each boundary) and the same paragraph
may be stored in several documents, so a chunk whose words are all in a chunk already
taken adds nothing and is skipped. The budget counts the chunks' stored token counts;
the first passage is always taken (a chunk is far shorter than any budget allowed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.domain.models import Chunk, ChunkHit
from app.domain.words import words
from app.ports.generator import Passage
from app.ports.graph_store import GraphStore


@dataclass(frozen=True, slots=True)
class ContextPassage:
    hit: ChunkHit
    chunk: Chunk
    title: str

    def passage(self, number: int) -> Passage:
        return Passage(number, self.chunk.id, self.chunk.document_id, self.title, self.chunk.text)


async def build_context(
    graph: GraphStore, hits: Sequence[ChunkHit], k: int, budget_tokens: int
) -> list[ContextPassage]:
    """At most ``k`` passages, best first, at most ``budget_tokens`` in all."""
    chunks = await graph.get_chunks([h.chunk_id for h in hits])
    documents = await graph.get_documents(list(dict.fromkeys(h.document_id for h in hits)))
    titles = {d.id: d.title for d in documents if d is not None}
    taken: list[ContextPassage] = []
    taken_words: list[frozenset[str]] = []
    used = 0
    for hit, chunk in zip(hits, chunks, strict=True):
        if len(taken) == k:
            break
        if chunk is None or chunk.document_id not in titles:  # deleted a moment ago
            continue
        chunk_words = frozenset(words(chunk.text))
        if any(chunk_words <= seen for seen in taken_words):
            continue
        if taken and used + chunk.token_count > budget_tokens:
            break
        taken.append(ContextPassage(hit, chunk, titles[chunk.document_id]))
        taken_words.append(chunk_words)
        used += chunk.token_count
    return taken
