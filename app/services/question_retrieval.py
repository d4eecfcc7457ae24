"""The passages a question is answered from, by ask mode.

- NAIVE: the chunks nearest the question's embedding.
- LOCAL: graph candidates, chosen as a chain of evidence.
  1. The entities the question names (``QuestionEntities``) are the seeds. Each seed's
     own documents (those mentioning it, at most ``SEED_DOCUMENTS``) are ranked against
     the question by the vector store (the documents are its filter).
  2. The walk: the seeds' neighbourhood (``LOCAL_DEPTH`` hops over relations, at most
     ``LOCAL_FANOUT`` entities per seed), and the bridge entities, those the best
     chunks of each seed's ranking mention. Their documents (``WALK_DOCUMENTS`` each),
     those holding the evidence of the relations walked (at most ``LOCAL_DOCUMENTS``)
     and the bridges' own pages are ranked against the question likewise.
  3. These rankings and the question's nearest chunks are fused (reciprocal rank
     fusion), each seed's best passage first; the best ``CANDIDATE_DEPTH`` are the
     candidates. A question naming no known entity has nothing to walk from: its
     candidates are its nearest chunks (the log says so).
  4. The context is chosen from the candidates as a chain (``evidence_chains``):
     passage by passage, for similarity to the question, a link to a passage chosen
     before (one mentions the entity the other's document is titled by: the graph's
     mentions) and the question words not yet covered. This is what brings in the
     second paragraph of a two-hop question, which is rarely near the question itself.
- HYBRID: the LOCAL candidates fused with the vector and keyword rankings, then chosen
  as a chain the same way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from app.domain.models import (
    AskMode,
    ChunkFilter,
    ChunkHit,
    Document,
    DocumentFilter,
    Entity,
    PageRequest,
)
from app.domain.words import words
from app.ports.graph_store import GraphStore
from app.services import evidence_chains
from app.services.question_entities import VALUE_TYPES, QuestionEntities, Seed
from app.services.search import SearchMode, SearchService, fuse

log = structlog.get_logger(__name__)

LOCAL_DEPTH = 2
LOCAL_FANOUT = 25
LOCAL_DOCUMENTS = 200
# Documents read per entity: the seeds' own, then each walked entity's.
SEED_DOCUMENTS = 50
WALK_DOCUMENTS = 10
# The best passage of each of the first seeds leads the LOCAL ranking.
FIRST_SEEDS = 2
# Documents whose title holds a seed's name, read to find the seed's own page.
TITLE_MATCHES = 5
_PARENTHESIS = re.compile(r"\s*\([^)]*\)\s*$")
# HYBRID's fusion weights of the LOCAL, vector and keyword rankings: LOCAL already holds
# the question's nearest chunks, and it is what reaches a second hop.
HYBRID_WEIGHTS = (2.0, 1.0, 1.0)
# Bridge entities come from this many best chunks of each seed's ranking, at most this
# many in all.
BRIDGE_FROM = 2
MAX_BRIDGES = 12
# How deep each ranking is read: the candidates the chain is chosen from.
CANDIDATE_DEPTH = 50
# Chunks of the candidates' documents read for their similarity to the question, per
# candidate (a candidate's document may hold other chunks nearer the question).
SIMILARITY_DEPTH = 4


@dataclass(frozen=True, slots=True)
class Retrieved:
    """Chunks best first, and the entities the retrieval went through (seeds first)."""

    hits: list[ChunkHit]
    entities: list[Entity]


class QuestionRetrieval:
    def __init__(self, search: SearchService, graph: GraphStore, names: QuestionEntities) -> None:
        self._search = search
        self._graph = graph
        self._names = names

    async def retrieve(self, question: str, mode: AskMode, depth: int) -> Retrieved:
        """The best ``depth`` chunks for the question in ``mode``."""
        if mode is AskMode.NAIVE:
            return Retrieved(await self._search.run(question, depth, SearchMode.VECTOR, _ALL), [])
        pool = max(depth, CANDIDATE_DEPTH)
        vector = await self._search.embed_query(question)
        # The question's nearest chunks are read once: LOCAL fuses them with the graph's
        # candidates, HYBRID with its keyword ranking too.
        by_vector, seeds = await asyncio.gather(
            self._search.nearest(vector, pool, _ALL), self._names.recognise(question)
        )
        if mode is AskMode.LOCAL:
            local = await self._local(seeds, vector, by_vector, pool)
            if not local.hits:
                log.info("ask.local_without_seeds", candidates="nearest")
            candidates = local.hits or by_vector
            return Retrieved(await self._chain(question, vector, candidates, depth), local.entities)
        local, by_words = await asyncio.gather(
            self._local(seeds, vector, by_vector, pool),
            self._search.run(question, pool, SearchMode.KEYWORD, _ALL),
        )
        rankings = [local.hits, by_vector, by_words] if local.hits else [by_vector, by_words]
        weights = HYBRID_WEIGHTS if local.hits else None
        candidates = fuse(rankings, pool, weights)
        return Retrieved(await self._chain(question, vector, candidates, depth), local.entities)

    async def _chain(
        self, question: str, vector: list[float], hits: Sequence[ChunkHit], depth: int
    ) -> list[ChunkHit]:
        """The candidates chosen as a chain of evidence (``evidence_chains``): each one's
        similarity to the question, text, document title and the entities it mentions
        are read in one batch each."""
        pool = list({h.chunk_id: h for h in hits}.values())
        if not pool:
            return []
        chunk_ids = [h.chunk_id for h in pool]
        document_ids = tuple(dict.fromkeys(h.document_id for h in pool))
        near, chunks, documents, mentioned = await asyncio.gather(
            self._search.nearest(
                vector, SIMILARITY_DEPTH * len(pool), ChunkFilter(document_ids=document_ids)
            ),
            self._graph.get_chunks(chunk_ids),
            self._graph.get_documents(document_ids),
            self._graph.entities_of_chunks(chunk_ids),
        )
        similarity = {h.chunk_id: h.score for h in near}
        floor = min(similarity.values(), default=0.0)
        titles = {d.id: d.title for d in documents if d is not None}
        candidates = [
            evidence_chains.candidate(
                hit,
                similarity.get(hit.chunk_id, floor),
                chunk.text,
                titles.get(hit.document_id, ""),
                [n for e in mentioned.get(hit.chunk_id, []) for n in (e.name, *e.aliases)],
            )
            for hit, chunk in zip(pool, chunks, strict=True)
            if chunk is not None  # deleted a moment ago
        ]
        return evidence_chains.choose(question, candidates, depth)

    async def _local(
        self,
        seeds: Sequence[Seed],
        vector: list[float],
        naive: Sequence[ChunkHit],
        depth: int,
    ) -> Retrieved:
        """The graph's candidates for the question (its ``seeds``, its embedding
        ``vector`` and its ``naive`` nearest chunks, read by the caller), fused."""
        if not seeds:
            return Retrieved([], [])
        deep = max(depth, CANDIDATE_DEPTH)
        seed_ids = [s.entity.id for s in seeds]
        (walked, relation_ids), of_seeds = await asyncio.gather(
            self._walk(seeds),
            self._graph.documents_of_entities(seed_ids, PageRequest(0, SEED_DOCUMENTS)),
        )
        seed_documents = tuple(dict.fromkeys(d.id for i in seed_ids for d in of_seeds[i].items))
        first = (
            await self._search.nearest(vector, deep, ChunkFilter(document_ids=seed_documents))
            if seed_documents
            else []
        )
        bridges = await self._bridges([first[: BRIDGE_FROM * len(seeds)]], set(seed_ids))
        entities = {e.id: e for e in walked}
        for entity in bridges:
            entities.setdefault(entity.id, entity)
        others = [e for e in entities if e not in set(seed_ids)]
        documents = seed_documents + await self._documents(
            others, relation_ids, set(seed_documents)
        )
        bridge_pages = await self._graph.documents_of_entities(
            [e.id for e in bridges], PageRequest(0, WALK_DOCUMENTS)
        )
        # An entity's own page (a document titled by its name) is about it: the seed's
        # answers and the bridge's second hop are most likely there.
        titled = await asyncio.gather(
            *(
                self._graph.list_documents(
                    DocumentFilter(title_contains=s.entity.name), PageRequest(0, TITLE_MATCHES)
                )
                for s in seeds
            )
        )
        seed_pages = [
            _own_pages(s.entity, [*of_seeds[s.entity.id].items, *found.items])
            for s, found in zip(seeds, titled, strict=True)
        ]
        pages_of_bridges = tuple(
            dict.fromkeys(
                d
                for e in bridges
                for d in _own_pages(e, bridge_pages[e.id].items)
                if d not in set(seed_documents)
            )
        )
        graph, bridged, *own = await asyncio.gather(
            self._search.nearest(vector, deep, ChunkFilter(document_ids=documents)),
            self._search.nearest(vector, deep, ChunkFilter(document_ids=pages_of_bridges))
            if pages_of_bridges
            else _none(),
            *(
                self._search.nearest(
                    vector,
                    1,
                    ChunkFilter(
                        document_ids=pages or tuple(d.id for d in of_seeds[s.entity.id].items)
                    ),
                )
                for s, pages in zip(seeds, seed_pages, strict=True)
                if pages or of_seeds[s.entity.id].items
            ),
        )
        # Each first seed's best passage first (a question about two things needs
        # both), then the graph's candidates, the question's nearest chunks and the
        # bridge entities' own pages, fused.
        # Seeds with a page of their own lead: a page titled by the name is the surest
        # sign the question means that entity.
        with_pages = [
            bool(p)
            for s, p in zip(seeds, seed_pages, strict=True)
            if p or of_seeds[s.entity.id].items
        ]
        order = sorted(range(len(own)), key=lambda n: not with_pages[n])
        firsts = [own[n][0] for n in order if own[n]][:FIRST_SEEDS]
        fused = fuse([graph, naive, bridged], depth + len(firsts))
        ranked = _first_then(firsts, fused, depth)
        return Retrieved(ranked, list(entities.values()))

    async def _bridges(
        self, best: Sequence[Sequence[ChunkHit]], seed_ids: set[str]
    ) -> list[Entity]:
        """The entities the best chunks of the seeds' rankings mention, first mention
        first, without the seeds and values (dates, numbers), at most ``MAX_BRIDGES``."""
        chunk_ids = list(dict.fromkeys(h.chunk_id for ranking in best for h in ranking))
        mentioned = await self._graph.entities_of_chunks(chunk_ids)
        found: dict[str, Entity] = {}
        for chunk_id in chunk_ids:
            for entity in mentioned.get(chunk_id, []):
                if entity.id not in seed_ids and entity.type.upper() not in VALUE_TYPES:
                    found.setdefault(entity.id, entity)
        return list(found.values())[:MAX_BRIDGES]

    async def _walk(self, seeds: Sequence[Seed]) -> tuple[list[Entity], list[str]]:
        """Seeds first, then the entities walked from them in walk order; and the ids of
        the relations walked, most confident first within each walk."""
        walks = await asyncio.gather(
            *(self._graph.neighborhood(s.entity.id, LOCAL_DEPTH, LOCAL_FANOUT) for s in seeds)
        )
        entities = {s.entity.id: s.entity for s in seeds}
        relations: dict[str, None] = {}
        for walk in walks:
            if walk is None:  # the seed was deleted a moment ago
                continue
            for entity in walk.entities:
                entities.setdefault(entity.id, entity)
            for relation in walk.relations:
                relations.setdefault(relation.id)
        return list(entities.values()), list(relations)

    async def _documents(
        self, entity_ids: Sequence[str], relation_ids: Sequence[str], seen: set[str]
    ) -> tuple[str, ...]:
        """The documents of the walked and bridge entities and of the walked relations'
        evidence, not among the seeds' own (``seen``), at most ``LOCAL_DOCUMENTS``."""
        of_entities, evidence = await asyncio.gather(
            self._graph.documents_of_entities(entity_ids, PageRequest(0, WALK_DOCUMENTS)),
            self._graph.evidence_of_relations(relation_ids),
        )
        ordered: dict[str, None] = {}
        for entity_id in entity_ids:
            for d in of_entities[entity_id].items:
                ordered.setdefault(d.id)
        for relation_id in relation_ids:
            for ev in evidence.get(relation_id, []):
                ordered.setdefault(ev.document_id)
        return tuple(d for d in ordered if d not in seen)[:LOCAL_DOCUMENTS]


async def _none() -> list[ChunkHit]:
    return []


def _own_pages(entity: Entity, documents: Sequence[Document]) -> tuple[str, ...]:
    """The documents titled by the entity's name or an alias (a parenthesis after it,
    "Roxie Hart (film)", is allowed)."""
    names = {" ".join(words(n)) for n in (entity.name, *entity.aliases)} - {""}
    return tuple(d.id for d in documents if " ".join(words(_PARENTHESIS.sub("", d.title))) in names)


def _first_then(first: Sequence[ChunkHit], rest: Sequence[ChunkHit], k: int) -> list[ChunkHit]:
    """``first``, then ``rest``, each chunk once, at most ``k``; scores are made to fall
    with the order (the fused scores of ``rest``, ``first`` above them)."""
    top = rest[0].score if rest else 0.0
    out: dict[str, ChunkHit] = {}
    for n, hit in enumerate(first):
        out.setdefault(
            hit.chunk_id, ChunkHit(hit.chunk_id, hit.document_id, top + (len(first) - n) * 1e-3)
        )
    for hit in rest:
        out.setdefault(hit.chunk_id, hit)
    return list(out.values())[:k]


_ALL = ChunkFilter()
