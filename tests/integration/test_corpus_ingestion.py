"""20 real Wikipedia paragraphs through the whole pipeline: the entities and relations a
person would expect from them come out, resolved across documents, with evidence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.config import load_settings
from app.container import Container, build_container
from app.domain.models import ChunkFilter, EntityFilter, PageRequest, RelationFilter
from app.services.search import SearchMode
from tests.integration.corpus_run import ingest_all, sample_documents

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def ingested(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Container]:
    data_dir: Path = tmp_path_factory.mktemp("corpus")
    container = build_container(load_settings(data_dir=data_dir))
    await container.start()
    await ingest_all(container, sample_documents())
    yield container
    await container.close()


async def entity(c: Container, name: str, type_: str) -> str:
    page = await c.catalog.list_entities(EntityFilter(name_contains=name), PageRequest(0, 50))
    found = [e for e in page.items if e.name == name and e.type == type_]
    assert len(found) == 1, [(e.name, e.type) for e in page.items]
    return found[0].id


async def test_every_document_is_stored(ingested: Container) -> None:
    stats = await ingested.catalog.stats()
    assert stats.documents == 20
    assert stats.chunks >= 20
    assert stats.entities > 60 and stats.relations > 60
    assert await ingested.vectors.count() == stats.chunks


@pytest.mark.parametrize(
    ("name", "type_"),
    [
        ("Etan Boritzer", "PERSON"),
        ("Mohan Kumar", "PERSON"),
        ("Nana Patekar", "PERSON"),
        ("Adalbert II", "PERSON"),
        ("New York City", "GPE"),
        ("Japan", "GPE"),
    ],
)
async def test_expected_entities(ingested: Container, name: str, type_: str) -> None:
    await entity(ingested, name, type_)


async def test_entities_resolve_across_documents(ingested: Container) -> None:
    # Six of the Lotharingian paragraphs name Lotharingia: one entity, six documents.
    lotharingia = await entity(ingested, "Lotharingia", "ORG")
    docs = (await ingested.catalog.documents_of_entities([lotharingia], PageRequest(0, 20)))[
        lotharingia
    ]
    assert docs.total >= 5
    japan = await entity(ingested, "Japan", "GPE")
    japan_docs = (await ingested.catalog.documents_of_entities([japan], PageRequest(0, 20)))[japan]
    assert {d.title for d in japan_docs.items} == {
        "The Wonderful World of Captain Kuhio",
        "Invasion of the Neptune Men",
    }


@pytest.mark.parametrize(
    ("source", "source_type", "rel_type", "target", "target_type"),
    [
        ("Lambert", "PERSON", "SON_OF", "Adalbert II", "PERSON"),
        # The small spaCy model labels both as ORG; the relation is right all the same.
        ("Ermengarde of Tours", "ORG", "DAUGHTER_OF", "Hugh of Tours", "ORG"),
        ("Bertha", "ORG", "COUNTESS_OF", "Arles", "GPE"),
    ],
)
async def test_expected_relations_with_evidence(
    ingested: Container,
    source: str,
    source_type: str,
    rel_type: str,
    target: str,
    target_type: str,
) -> None:
    s = await entity(ingested, source, source_type)
    t = await entity(ingested, target, target_type)
    page = await ingested.catalog.list_relations(
        RelationFilter(type=rel_type, source_id=s, target_id=t), PageRequest(0, 5)
    )
    assert len(page.items) == 1
    relation = page.items[0]
    evidence = (await ingested.catalog.evidence_of_relations([relation.id]))[relation.id]
    assert evidence
    chunks = await ingested.catalog.chunks([e.chunk_id for e in evidence])
    for ev, chunk in zip(evidence, chunks, strict=True):
        assert chunk is not None and ev.text in chunk.text
        assert source.split()[0] in ev.text and target.split()[0] in ev.text


async def test_every_relation_has_evidence_in_its_chunk(ingested: Container) -> None:
    page = await ingested.catalog.list_relations(RelationFilter(), PageRequest(0, 100))
    evidence = await ingested.catalog.evidence_of_relations([r.id for r in page.items])
    for relation in page.items:
        found = evidence[relation.id]
        assert found, relation
        assert relation.confidence == max(e.confidence for e in found)
        chunks = await ingested.catalog.chunks([e.chunk_id for e in found])
        assert all(c is not None and e.text in c.text for e, c in zip(found, chunks, strict=True))


async def test_hybrid_search_fuses_the_vector_and_keyword_lists(ingested: Container) -> None:
    """HYBRID holds what each mode ranks first, scored by reciprocal rank fusion, and
    keeps to the filters (each store applies them)."""
    query = "queen of Lotharingia Teutberga"
    by_vector = await ingested.search.search(query, 10, SearchMode.VECTOR, ChunkFilter())
    by_words = await ingested.search.search(query, 10, SearchMode.KEYWORD, ChunkFilter())
    hybrid = await ingested.search.search(query, 10, SearchMode.HYBRID, ChunkFilter())
    ids = [h.chunk_id for h in hybrid]
    assert by_vector[0].chunk_id in ids[:3] and by_words[0].chunk_id in ids[:3]
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)
    assert 0 < hybrid[-1].score <= hybrid[0].score <= 2 / 61

    only = (by_words[0].document_id,)
    within = await ingested.search.search(
        query, 10, SearchMode.HYBRID, ChunkFilter(document_ids=only)
    )
    assert within and {h.document_id for h in within} == set(only)
    places = await ingested.search.search(
        query, 10, SearchMode.HYBRID, ChunkFilter(entity_types=("GPE",))
    )
    chunks = await ingested.catalog.entities_of_chunks([h.chunk_id for h in places])
    assert places and all(any(e.type == "GPE" for e in chunks[h.chunk_id]) for h in places)
