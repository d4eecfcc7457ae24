"""Questions answered from the graph and the text, with citations a reader can check.

``ask`` retrieves passages by mode (``QuestionRetrieval``), bounds and deduplicates them
(``build_context``), hands them to the generator, and checks what it cites
(``checked_citations``). ``ask_stream`` does the same but passes the generator's text
on as it comes, then the whole Answer. Answers are cached under the graph version and
the generator's name, so an answer is reused until the graph changes, never after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from app.config import LimitSettings
from app.domain.errors import BackendError
from app.domain.models import Answer, AskMode, ChunkHit, Citation, Entity
from app.domain.words import words
from app.ports.generator import Generated, Generator
from app.ports.graph_store import GraphStore
from app.services.answer_context import build_context
from app.services.citations import checked_citations
from app.services.question_retrieval import QuestionRetrieval
from app.services.result_cache import ResultCache
from app.services.search import check_query
from app.services.validation import check_k

ANSWER_TTL_SECONDS = 600.0


class AnswerService:
    def __init__(
        self,
        retrieval: QuestionRetrieval,
        graph: GraphStore,
        generator: Generator,
        limits: LimitSettings,
        context_tokens: int,
        results: ResultCache,
    ) -> None:
        self._retrieval = retrieval
        self._graph = graph
        self._generator = generator
        self._limits = limits
        self._context_tokens = context_tokens
        self._results = results

    @property
    def model(self) -> str:
        return self._generator.name

    async def ask(self, question: str, k: int, mode: AskMode) -> Answer:
        answer: Answer | None = None
        async for item in self.ask_stream(question, k, mode):
            if isinstance(item, Answer):
                answer = item
        if answer is None:  # ask_stream always ends with one
            raise BackendError("the generator ended without an answer")
        return answer

    async def ask_stream(self, question: str, k: int, mode: AskMode) -> AsyncIterator[str | Answer]:
        """Text as the generator produces it, then the Answer (last). A cached answer
        comes as one piece of text, then the Answer."""
        question = check_query(question, "question")
        check_k(k, self._limits)
        key = await self._results.key("ask", question, k, mode.value, self._generator.name)
        cached = await self._results.read(key)
        if cached is not None:
            try:
                answer = decode_answer(cached)
            except (KeyError, TypeError, ValueError):
                answer = None
            if answer is not None:
                yield answer.text
                yield answer
                return
        retrieved = await self._retrieval.retrieve(question, mode, k)
        context = await build_context(self._graph, retrieved.hits, k, self._context_tokens)
        passages = [p.passage(n) for n, p in enumerate(context, start=1)]
        generated: Generated | None = None
        async for item in self._generator.stream(question, passages):
            if isinstance(item, Generated):
                generated = item
            elif item:
                yield item
        if generated is None:
            raise BackendError(f"generator {self._generator.name} ended without an answer")
        citations = checked_citations(generated.citations, context, generated.text)
        entities = await self._entities_used(generated.text, citations, retrieved.entities)
        answer = Answer(
            text=generated.text,
            citations=tuple(citations),
            entity_ids=tuple(e.id for e in entities),
            mode=mode,
            model=generated.model,
            context=tuple(p.hit for p in context),
            supported=generated.supported and bool(citations),
        )
        await self._results.write(key, encode_answer(answer))
        yield answer

    async def _entities_used(
        self, text: str, citations: Sequence[Citation], walked: Sequence[Entity]
    ) -> list[Entity]:
        """The entities of the cited chunks that the answer or a quote names (by name or
        alias, whole words), the walk's seeds and entities first."""
        if not citations:
            return []
        mentioned = await self._graph.entities_of_chunks(
            list(dict.fromkeys(c.chunk_id for c in citations))
        )
        said = " " + " ".join(words(" ".join([text, *(c.quote for c in citations)]))) + " "
        order = {e.id: n for n, e in enumerate(walked)}
        used: dict[str, Entity] = {}
        for entities in mentioned.values():
            for entity in entities:
                names = (" ".join(words(n)) for n in (entity.name, *entity.aliases))
                if any(name and f" {name} " in said for name in names):
                    used.setdefault(entity.id, entity)
        return sorted(used.values(), key=lambda e: (order.get(e.id, len(order)), e.id))


def encode_answer(answer: Answer) -> dict[str, object]:
    return {
        "text": answer.text,
        "citations": [[c.document_id, c.chunk_id, c.quote, c.score] for c in answer.citations],
        "entities": list(answer.entity_ids),
        "mode": answer.mode.value,
        "model": answer.model,
        "context": [[h.chunk_id, h.document_id, h.score] for h in answer.context],
        "supported": answer.supported,
    }


def decode_answer(value: object) -> Answer:
    if not isinstance(value, dict):
        raise TypeError("a cached answer is not an object")
    return Answer(
        text=str(value["text"]),
        citations=tuple(
            Citation(str(d), str(c), str(q), float(s)) for d, c, q, s in value["citations"]
        ),
        entity_ids=tuple(str(e) for e in value["entities"]),
        mode=AskMode(value["mode"]),
        model=str(value["model"]),
        context=tuple(ChunkHit(str(c), str(d), float(s)) for c, d, s in value["context"]),
        supported=bool(value["supported"]),
    )
