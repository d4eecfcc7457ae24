"""Congruence: the embedded backends and Neo4j answer clients alike.

The first 50 paragraphs of the fixture corpus go, through the real wiring
(``build_container``) and one pair of loaded models, into SQLite + Qdrant Edge and into
Neo4j (graph store and vector store on one database). Every read a client can make is
then run on both through the GraphQL schema, in process, and the answers compared:
stats, the full ordered lists of documents, entities and relations with their edges,
filtered listings, pages of seven, search, lookups, errors of bad input, and a delete.

Documents are listed by ``ingested_at``, a time each run sets anew, so their order is
compared, not the times. One pipeline worker per container stores documents in the order
they were submitted, which makes that order the same on both.

VECTOR search: both stores search exactly at this size (Qdrant Edge below its indexing
threshold, Neo4j below ``EXACT_SCAN_MAX``); ranks are equal and scores agree to ~2e-7,
well inside the closest gap between two ranks (~9e-5), so no tie is left to chance.

KEYWORD search scores differ by design (FTS5 bm25 against Lucene), so only the set of
chunks a single word matches is compared, for every word of every entity name, plus
stop words, words before an apostrophe and letters with and without a decomposition:
both stores match the same words (``app/adapters/search_words.py``).
"""

from __future__ import annotations

import asyncio
import os
import re
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import neo4j
import pytest

from app.config import Settings, load_settings
from app.container import Container, build_container, make_embedder, make_extractor
from app.domain.models import DocumentInput
from app.ports.models import Embedder, Extractor
from app.security.authenticate import LOCAL_PRINCIPAL
from app.server import services_of
from graphql_schema.context import Context
from graphql_schema.relay import decode_cursor
from graphql_schema.schema import schema
from tests.contract.conftest import _NEO4J_WIPE
from tests.contract.vector_fixtures import _NEO4J_VECTOR_WIPE
from tests.integration.corpus_run import ingest_all, sample_documents

P = ParamSpec("P")
T = TypeVar("T")

NEO4J_URL = os.environ.get("KG_TEST_NEO4J_URL")
NEO4J_USER = os.environ.get("KG_TEST_NEO4J_USER") or "neo4j"
NEO4J_PASSWORD = os.environ.get("KG_TEST_NEO4J_PASSWORD") or None
DOCUMENTS = 50
FULL_PAGE = 100  # the largest page and k the API serves (KG_LIMITS__MAX_PAGE_SIZE, _SEARCH_K)
SCORE_TOLERANCE = 1e-4

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not NEO4J_URL,
        reason="KG_TEST_NEO4J_URL is not set: no Neo4j server to compare the embedded "
        "backends with (run `make services-up`, then `. .services/env`)",
    ),
]


# --- the two backends, filled alike ----------------------------------------------------


@dataclass(frozen=True)
class Backends:
    embedded: Container
    neo4j: Container
    inputs: list[DocumentInput]

    async def both(
        self,
        read: Callable[Concatenate[Container, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> tuple[T, T]:
        """``read`` on the embedded backends, then on Neo4j."""
        return await read(self.embedded, *args, **kwargs), await read(self.neo4j, *args, **kwargs)


def wipe_neo4j() -> None:
    """Remove what the graph and vector stores wrote before, and nothing else."""
    assert NEO4J_URL
    auth = None if NEO4J_PASSWORD is None else (NEO4J_USER, NEO4J_PASSWORD)
    with neo4j.GraphDatabase.driver(NEO4J_URL, auth=auth) as driver:
        for statement in (_NEO4J_WIPE, *_NEO4J_VECTOR_WIPE):
            with driver.session() as session:
                session.run(statement).consume()


def settings_for(root: Path, **backends: Any) -> Settings:
    return load_settings(data_dir=root, pipeline={"workers": 1}, **backends)


@pytest.fixture(scope="module")
async def models() -> tuple[Extractor, Embedder]:
    """The models, loaded once and shared by both containers."""
    defaults = load_settings()
    extractor, embedder = make_extractor(defaults), make_embedder(defaults)
    await asyncio.to_thread(extractor.load)
    await asyncio.to_thread(embedder.load)
    return extractor, embedder


@pytest.fixture(scope="module")
async def backends(
    tmp_path_factory: pytest.TempPathFactory, models: tuple[Extractor, Embedder]
) -> AsyncIterator[Backends]:
    extractor, embedder = models
    root = tmp_path_factory.mktemp("congruence")
    await asyncio.to_thread(wipe_neo4j)
    password = {} if NEO4J_PASSWORD is None else {"password": NEO4J_PASSWORD}
    neo4j_settings = settings_for(
        root / "neo4j",
        graph_url=NEO4J_URL,
        vector_url=NEO4J_URL,
        neo4j={"user": NEO4J_USER, **password},
    )
    embedded = build_container(
        settings_for(root / "embedded"), extractor=extractor, embedder=embedder
    )
    server = build_container(neo4j_settings, extractor=extractor, embedder=embedder)
    inputs = sample_documents(DOCUMENTS)
    started: list[Container] = []
    try:
        for container in (embedded, server):
            await container.start()
            started.append(container)
        # Together: the models serialise their calls, and one side's model work overlaps
        # the other's writes.
        await asyncio.gather(ingest_all(embedded, inputs), ingest_all(server, inputs))
        yield Backends(embedded=embedded, neo4j=server, inputs=inputs)
    finally:
        for container in started:
            await container.close()
        await asyncio.to_thread(wipe_neo4j)  # leave the server as found


# --- reading through the API -----------------------------------------------------------


def context_of(c: Container) -> Context:
    services = services_of(c)
    return Context(services=services, request_id="congruence", principal=LOCAL_PRINCIPAL)


async def gql(c: Container, /, document: str, **variables: Any) -> dict[str, Any]:
    result = await schema.execute(document, variable_values=variables, context_value=context_of(c))
    assert result.errors is None, result.errors
    assert result.data is not None
    return result.data


async def error_codes(c: Container, /, document: str, **variables: Any) -> list[str]:
    result = await schema.execute(document, variable_values=variables, context_value=context_of(c))
    assert result.errors, f"expected an error from {document}"
    return [str((e.extensions or {}).get("code")) for e in result.errors]


async def walk(
    c: Container, /, query: str, field: str, first: int, **variables: Any
) -> list[dict[str, Any]]:
    """Every page of connection ``field`` (``query`` takes ``$first`` and ``$after``)."""
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = (await gql(c, query, first=first, after=after, **variables))[field]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return pages
        after = page["pageInfo"]["endCursor"]
        assert len(pages) <= 1_000, f"{field} pages never end"


def nodes(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [edge["node"] for page in pages for edge in page["edges"]]


async def full_list(c: Container, /, query: str, field: str, **variables: Any) -> list[Any]:
    return nodes(await walk(c, query, field, FULL_PAGE, **variables))


def complete(connection: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes of a nested connection asked with ``first: 100``: all of them."""
    assert connection["totalCount"] == len(connection["edges"]) <= FULL_PAGE
    return [edge["node"] for edge in connection["edges"]]


async def search(
    c: Container, /, query: str, mode: str, k: int = 10, filter: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    found = await gql(c, SEARCH_QUERY, query=query, k=k, mode=mode, filter=filter)
    hits: list[dict[str, Any]] = found["search"]
    return hits


PAGE_INFO = "totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
IDS = "totalCount edges { node { id } }"

DOCUMENTS_QUERY = f"""
query($first: Int, $after: String, $filter: DocumentFilter) {{
  documents(first: $first, after: $after, filter: $filter) {{ {PAGE_INFO}
    edges {{ cursor node {{ id title source text publishedAt metadata chunkCount
      chunks(first: 100) {{ totalCount edges {{ node {{ id index text start end
        entities {{ id }} }} }} }}
      entities(first: 100) {{ totalCount edges {{ node {{ id mentionCount }} }} }}
    }} }}
  }}
}}"""

ENTITIES_QUERY = f"""
query($first: Int, $after: String, $filter: EntityFilter) {{
  entities(first: $first, after: $after, filter: $filter) {{ {PAGE_INFO}
    edges {{ cursor node {{ id name type aliases mentionCount }} }}
  }}
}}"""

ENTITY_EDGES_QUERY = f"""
query($first: Int, $after: String) {{
  entities(first: $first, after: $after) {{ {PAGE_INFO}
    edges {{ cursor node {{ id name type aliases mentionCount
      documents(first: 100) {{ {IDS} }}
      out: relations(first: 100, direction: OUT) {{ {IDS} }}
      in: relations(first: 100, direction: IN) {{ {IDS} }}
      both: relations(first: 100, direction: BOTH) {{ {IDS} }}
    }} }}
  }}
}}"""

RELATIONS_QUERY = f"""
query($first: Int, $after: String, $filter: RelationFilter) {{
  relations(first: $first, after: $after, filter: $filter) {{ {PAGE_INFO}
    edges {{ cursor node {{ id type confidence source {{ id }} target {{ id }}
      evidence {{ text chunk {{ id }} document {{ id }} }} }} }}
  }}
}}"""

# Relations without their evidence, for the filters (the full list compares evidence).
RELATION_ROWS_QUERY = f"""
query($first: Int, $after: String, $filter: RelationFilter) {{
  relations(first: $first, after: $after, filter: $filter) {{ {PAGE_INFO}
    edges {{ cursor node {{ id type confidence source {{ id }} target {{ id }} }} }}
  }}
}}"""


def ids_query(field: str) -> str:
    """Just the pages of a root connection: ids and cursors."""
    return f"""query($first: Int, $after: String) {{
      {field}(first: $first, after: $after) {{ {PAGE_INFO} edges {{ cursor node {{ id }} }} }}
    }}"""


STATS_QUERY = "{ stats { documents chunks entities relations } }"

SEARCH_QUERY = """
query($query: String!, $k: Int, $mode: SearchMode, $filter: SearchFilter) {
  search(query: $query, k: $k, mode: $mode, filter: $filter) {
    score chunk { id } document { id }
  }
}"""


# --- the graph -------------------------------------------------------------------------


async def test_stats_match(backends: Backends) -> None:
    embedded, server = await backends.both(gql, STATS_QUERY)
    assert embedded == server
    stats = embedded["stats"]
    assert stats["documents"] == DOCUMENTS
    assert stats["chunks"] >= DOCUMENTS and stats["entities"] > 100 and stats["relations"] > 100


async def test_documents_chunks_and_their_entities_match(backends: Backends) -> None:
    embedded, server = await backends.both(full_list, DOCUMENTS_QUERY, "documents")
    assert [d["id"] for d in embedded] == [d["id"] for d in server]
    for mine, theirs in zip(embedded, server, strict=True):
        assert complete(mine.pop("chunks")) == complete(theirs.pop("chunks")), mine["title"]
        assert complete(mine.pop("entities")) == complete(theirs.pop("entities")), mine["title"]
        assert mine == theirs
    # One worker stores in submission order, so the newest is the last submitted.
    assert [d["title"] for d in embedded] == [d.title for d in reversed(backends.inputs)]


async def test_entities_and_their_edges_match(backends: Backends) -> None:
    embedded, server = await backends.both(full_list, ENTITY_EDGES_QUERY, "entities")
    assert [e["id"] for e in embedded] == [e["id"] for e in server]
    for mine, theirs in zip(embedded, server, strict=True):
        for edge in ("documents", "out", "in", "both"):
            assert complete(mine.pop(edge)) == complete(theirs.pop(edge)), (edge, mine)
        assert mine == theirs
    assert any(e["aliases"] for e in embedded)  # the comparison covers aliases


async def test_relations_and_their_evidence_match(backends: Backends) -> None:
    embedded, server = await backends.both(full_list, RELATIONS_QUERY, "relations")
    assert embedded == server
    assert all(r["evidence"] for r in embedded)


# --- filtered listings -----------------------------------------------------------------


async def test_entities_by_type_match(backends: Backends) -> None:
    everything = await full_list(backends.embedded, ENTITIES_QUERY, "entities")
    types = sorted({e["type"] for e in everything})
    assert len(types) >= 3
    for type_ in [*types, "NO_SUCH_TYPE"]:
        by_type = {"type": type_}
        embedded, server = await backends.both(
            full_list, ENTITIES_QUERY, "entities", filter=by_type
        )
        assert embedded == server, type_
        assert [e for e in everything if e["type"] == type_] == embedded


@pytest.mark.parametrize(
    "name_contains", ["lothar", "LOTHAR", "of", "an", "ü", "svěrák", " ", "zzqx"]
)
async def test_entities_by_name_match(backends: Backends, name_contains: str) -> None:
    by_name = {"nameContains": name_contains}
    embedded, server = await backends.both(full_list, ENTITIES_QUERY, "entities", filter=by_name)
    assert embedded == server
    assert all(name_contains.casefold() in e["name"].casefold() for e in embedded)


@pytest.mark.parametrize(
    "filter_",
    [
        {"titleContains": "of"},
        {"titleContains": "FILM"},
        {"titleContains": "bråk"},
        {"source": "2wikimultihopqa"},
        {"source": "elsewhere"},
        {"source": "2wikimultihopqa", "titleContains": "lothair"},
    ],
)
async def test_documents_by_filter_match(backends: Backends, filter_: dict[str, str]) -> None:
    embedded, server = await backends.both(full_list, DOCUMENTS_QUERY, "documents", filter=filter_)
    assert [d["id"] for d in embedded] == [d["id"] for d in server]


async def test_relations_by_filter_match(backends: Backends) -> None:
    everything = await full_list(backends.embedded, RELATIONS_QUERY, "relations")
    types = sorted(
        {r["type"] for r in everything}, key=lambda t: -sum(r["type"] == t for r in everything)
    )
    filters: list[dict[str, str]] = [{"type": t} for t in types[:6]]
    for r in everything[::50]:
        source, target = r["source"]["id"], r["target"]["id"]
        filters += [
            {"sourceId": source},
            {"targetId": target},
            {"type": r["type"], "sourceId": source, "targetId": target},
        ]
    for filter_ in filters:
        embedded, server = await backends.both(
            full_list, RELATION_ROWS_QUERY, "relations", filter=filter_
        )
        assert embedded == server, filter_
        assert embedded, filter_


# --- pagination ------------------------------------------------------------------------


def page_shape(pages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a client walking pages sees, cursors decoded to the positions they mark."""
    shape: list[tuple[Any, ...]] = []
    for page in pages:
        info = page["pageInfo"]
        shape.append(
            (
                page["totalCount"],
                info["hasNextPage"],
                info["hasPreviousPage"],
                decode_cursor(info["startCursor"]) - 1,
                decode_cursor(info["endCursor"]) - 1,
                [(decode_cursor(e["cursor"]) - 1, e["node"]["id"]) for e in page["edges"]],
            )
        )
    return shape


@pytest.mark.parametrize("field", ["documents", "entities", "relations"])
async def test_pages_of_seven_match(backends: Backends, field: str) -> None:
    embedded, server = await backends.both(walk, ids_query(field), field, 7)
    assert page_shape(embedded) == page_shape(server)
    walked = [position for *_, edges in page_shape(embedded) for position, _ in edges]
    total = embedded[0]["totalCount"]
    assert walked == list(range(total)) and len(embedded) == -(-total // 7)
    whole = await full_list(backends.embedded, ids_query(field), field)
    assert nodes(embedded) == whole


# --- vector search ---------------------------------------------------------------------

VECTOR_QUERIES = [
    "queen of Lotharingia by marriage",
    "medieval bishop and the date of his death",
    "film released in Japan",
    "Hindi movie directed by Mohan Kumar",
    "singer of an indie rock band",
    "village in Poland",
    "ferry crossing a river",
    "American film director best known for a movie",
    "telephone country code",
    "rapper from Trinidad",
]


def ranked(hits: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(h["chunk"]["id"], h["document"]["id"]) for h in hits]


def assert_same_hits(mine: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> None:
    assert ranked(mine) == ranked(theirs)
    assert [h["score"] for h in mine] == pytest.approx(
        [h["score"] for h in theirs], abs=SCORE_TOLERANCE
    )


@pytest.mark.parametrize("query", VECTOR_QUERIES)
async def test_vector_search_matches(backends: Backends, query: str) -> None:
    embedded, server = await backends.both(search, query, "VECTOR", k=10)
    assert_same_hits(embedded, server)
    assert len(embedded) == 10


@pytest.mark.parametrize(
    "filter_",
    [
        {"entityTypes": ["PERSON"]},
        {"entityTypes": ["GPE", "LOC"]},
        {"entityTypes": ["WORK_OF_ART", "NORP"]},
    ],
)
async def test_filtered_vector_search_matches(backends: Backends, filter_: dict[str, Any]) -> None:
    for query in VECTOR_QUERIES[:4]:
        embedded, server = await backends.both(search, query, "VECTOR", k=8, filter=filter_)
        assert_same_hits(embedded, server)
        assert len(embedded) == 8, query


async def test_vector_search_within_documents_matches(backends: Backends) -> None:
    docs = await full_list(backends.embedded, DOCUMENTS_QUERY, "documents")
    chosen = [d["id"] for d in docs[::7]]
    within = {"documentIds": chosen}
    embedded, server = await backends.both(search, "film", "VECTOR", k=5, filter=within)
    assert_same_hits(embedded, server)
    assert {doc for _, doc in ranked(embedded)} <= set(chosen) and len(embedded) == 5


# --- keyword search: the sets of matching chunks ---------------------------------------


async def keyword_hits(c: Container, /, words: list[str]) -> dict[str, set[str]]:
    """The chunks each word matches, asked in one operation (an aliased field each)."""
    params = ", ".join(f"$w{i}: String!" for i in range(len(words)))
    fields = " ".join(
        f"w{i}: search(query: $w{i}, k: {FULL_PAGE}, mode: KEYWORD) {{ chunk {{ id }} }}"
        for i in range(len(words))
    )
    variables = {f"w{i}": w for i, w in enumerate(words)}
    data = await gql(c, f"query({params}) {{ {fields} }}", **variables)
    found: dict[str, set[str]] = {}
    for i, word in enumerate(words):
        hits = data[f"w{i}"]
        assert len(hits) < FULL_PAGE, word  # every match, not a top k
        found[word] = {h["chunk"]["id"] for h in hits}
    return found


async def test_keyword_search_matches_for_words_of_entity_names(backends: Backends) -> None:
    entities = await full_list(backends.embedded, ENTITIES_QUERY, "entities")
    words = sorted({word for e in entities for word in re.findall(r"\w+", e["name"])})
    assert len(words) > 300
    embedded, server = await backends.both(keyword_hits, words)
    differing = {w: (embedded[w], server[w]) for w in words if embedded[w] != server[w]}
    assert differing == {}
    assert all(embedded[w] for w in words)  # every word of a name is in some chunk


async def test_keyword_search_keeps_stop_words_on_both(backends: Backends) -> None:
    """Lucene's English analysers would drop these; the whitespace analyser over
    pre-split words (search_words) keeps them, as SQLite does."""
    words = ["the", "of", "and", "with", "A"]
    embedded, server = await backends.both(keyword_hits, words)
    assert all(embedded[w] for w in words)
    assert embedded == server


async def test_keyword_search_finds_words_before_an_apostrophe(backends: Backends) -> None:
    """Lucene's word boundaries keep "Norway's" whole; the indexed words split it."""
    words = ["Norway", "Maurice", "Foster", "MTV", "Carlmar", "children"]
    embedded, server = await backends.both(keyword_hits, words)
    assert all(embedded[w] for w in words)
    assert embedded == server


async def test_keyword_search_folds_combining_marks_alike(backends: Backends) -> None:
    words = ["Sverak", "Svěrák", "Kutzkow", "Kützkow", "Marufabad", "1961"]
    embedded, server = await backends.both(keyword_hits, words)
    assert embedded == server
    assert all(embedded[w] for w in words)


async def test_keyword_search_folds_letters_with_strokes_alike(backends: Backends) -> None:
    """ł, ø, æ have no decomposition: neither store folds them (Lucene's ASCII folding
    would), so "Łódź" finds the chunk and "Lodz" finds nothing, on both."""
    words = ["Łódź", "Iława", "Lodz", "Ilawa"]
    embedded, server = await backends.both(keyword_hits, words)
    assert embedded == server
    assert embedded["Łódź"] and embedded["Iława"]
    assert not embedded["Lodz"] and not embedded["Ilawa"]


# --- entity search: the same candidates in the same order ------------------------------


async def entity_hits(c: Container, /, queries: list[list[str]], k: int) -> list[list[str]]:
    """The ids ``search_entities`` gives for each list of words, in order."""
    return [[e.id for e in await c.graph.search_entities(words, k)] for words in queries]


async def test_search_entities_matches(backends: Backends) -> None:
    """Every word of every entity name alone (ranked by mentions, then id), every whole
    name (ranked by words matched first), and the accented words with and without their
    marks: both stores give the same ids in the same order."""
    entities = await full_list(backends.embedded, ENTITIES_QUERY, "entities")
    words = sorted({word for e in entities for word in re.findall(r"\w+", e["name"])})
    accented = [w for w in words if unicodedata.normalize("NFD", w) != w]
    assert accented  # the corpus has names with marks
    bare = ["".join(c for c in unicodedata.normalize("NFD", w) if c.isascii()) for w in accented]
    queries = [
        *([w] for w in words),
        *(re.findall(r"\w+", e["name"]) for e in entities),
        *([w] for w in accented + bare),
        [w.upper() for w in accented],
    ]
    embedded, server = await backends.both(entity_hits, queries, 20)
    differing = {
        " ".join(q): (mine, theirs)
        for q, mine, theirs in zip(queries, embedded, server, strict=True)
        if mine != theirs
    }
    assert differing == {}
    assert all(embedded[: len(words)])  # every word of a name finds its entity
    assert all(len(ids) <= 20 for ids in embedded)  # k bounds common words
    assert max(len(ids) for ids in embedded) >= 15


# --- questions: the same answer from the same passages ----------------------------------

ASK_QUERY = """query($q: String!, $mode: AskMode) { ask(question: $q, k: 5, mode: $mode) {
  answer supported model mode citations { quote score chunk { id } document { id } }
  entities { id } context { score chunk { id } } } }"""
QUESTIONS = [
    "Who directed the film Empties?",
    "When did Teutberga die?",
    "Who was the mother of Lothair II?",
    "Which films were released in Japan?",
    "Who wrote the film Coney Island Baby?",
    "What is the boiling point of tungsten?",
]


def scores_apart(answer: dict[str, Any]) -> tuple[dict[str, Any], list[float]]:
    """The answer without its scores, and the scores (the two vector stores agree to
    about 1e-7, so scores are compared with a tolerance)."""
    same = dict(answer)
    same["citations"] = [{**c, "score": None} for c in answer["citations"]]
    same["context"] = [{**h, "score": None} for h in answer["context"]]
    scores = [c["score"] for c in answer["citations"]] + [h["score"] for h in answer["context"]]
    return same, scores


@pytest.mark.parametrize("mode", ["NAIVE", "LOCAL"])
async def test_answers_match(backends: Backends, mode: str) -> None:
    """NAIVE and LOCAL walk, rank, bound and answer alike on SQLite and on Neo4j."""
    for question in QUESTIONS:
        embedded, server = await backends.both(gql, ASK_QUERY, q=question, mode=mode)
        (mine, my_scores), (theirs, their_scores) = (
            scores_apart(embedded["ask"]),
            scores_apart(server["ask"]),
        )
        assert mine == theirs, question
        assert my_scores == pytest.approx(their_scores, abs=1e-5), question
        assert mine["context"], question


async def test_hybrid_answers_agree_where_keyword_scores_allow(backends: Backends) -> None:
    """HYBRID fuses the keyword ranking, whose scores differ by store (SQLite's BM25,
    Lucene's): the same chunks match, ranked a little differently, so the contexts
    overlap mostly and the answers mostly agree, rather than exactly."""
    agree = 0
    for question in QUESTIONS:
        embedded, server = await backends.both(gql, ASK_QUERY, q=question, mode="HYBRID")
        mine, theirs = embedded["ask"], server["ask"]
        shared = {h["chunk"]["id"] for h in mine["context"]} & {
            h["chunk"]["id"] for h in theirs["context"]
        }
        assert len(shared) >= 3, question
        assert mine["supported"] == theirs["supported"], question
        agree += mine["answer"] == theirs["answer"]
    assert agree >= len(QUESTIONS) - 1


# --- lookups and bad input -------------------------------------------------------------

NODE_QUERY = """query($id: ID!) { node(id: $id) { __typename id
  ... on Document { title chunkCount } ... on Chunk { index text }
  ... on Entity { name type mentionCount } ... on Relation { type confidence } } }"""


async def test_nodes_by_id_match(backends: Backends) -> None:
    relation = (await full_list(backends.embedded, RELATIONS_QUERY, "relations"))[0]
    evidence = relation["evidence"][0]
    known = [evidence["document"]["id"], evidence["chunk"]["id"], relation["source"]["id"]]
    unknown = ["doc_000000000000000000000000", "ent_000000000000000000000000", "not-an-id"]
    for id_ in [*known, relation["id"], *unknown]:
        embedded, server = await backends.both(gql, NODE_QUERY, id=id_)
        assert embedded == server, id_
        assert (embedded["node"] is None) == (id_ in unknown), id_


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("query($a: String) { documents(first: 7, after: $a) { totalCount } }", {"a": "bogus"}),
        ("{ entities(first: 101) { totalCount } }", {}),
        ("{ relations(first: -1) { totalCount } }", {}),
        ('{ search(query: "film", k: 101, mode: VECTOR) { score } }', {}),
        ('{ search(query: "film", k: 0, mode: KEYWORD) { score } }', {}),
        ('{ search(query: "   ", mode: KEYWORD) { score } }', {}),
        ('{ search(query: "film", k: 101, mode: HYBRID) { score } }', {}),
        ('mutation { deleteDocument(id: "doc_000000000000000000000000") { deleted } }', {}),
        ('mutation { deleteDocument(id: "ent_000000000000000000000000") { deleted } }', {}),
    ],
)
async def test_bad_input_gets_the_same_error(
    backends: Backends, document: str, variables: dict[str, Any]
) -> None:
    embedded, server = await backends.both(error_codes, document, **variables)
    assert embedded == server
    assert embedded[0] in ("BAD_USER_INPUT", "NOT_FOUND")


@pytest.mark.parametrize(
    ("mode", "query", "filter_"),
    [
        ("KEYWORD", "?!*", None),
        ("KEYWORD", "zzqxv", None),
        ("KEYWORD", "film", {"documentIds": []}),
        ("KEYWORD", "film", {"entityTypes": ["NO_SUCH_TYPE"]}),
        ("VECTOR", "film", {"documentIds": []}),
        ("VECTOR", "film", {"entityTypes": ["NO_SUCH_TYPE"]}),
    ],
)
async def test_searches_that_find_nothing_match(
    backends: Backends, mode: str, query: str, filter_: dict[str, Any] | None
) -> None:
    embedded, server = await backends.both(search, query, mode, k=5, filter=filter_)
    assert embedded == server == []


# --- a delete (last: it changes the data every test above reads) -----------------------


async def test_deleting_a_document_removes_the_same(backends: Backends) -> None:
    first = backends.inputs[0]  # Teutberga: some of its entities are its own, some shared
    docs = await full_list(backends.embedded, DOCUMENTS_QUERY, "documents")
    (doc_id,) = [d["id"] for d in docs if d["title"] == first.title]
    before = await full_list(backends.embedded, ENTITIES_QUERY, "entities")

    embedded, server = await backends.both(lambda c: c.ingestion.delete_document(doc_id))
    assert embedded.document_id == server.document_id == doc_id
    assert embedded.chunk_ids == server.chunk_ids
    assert sorted(embedded.removed_entity_ids) == sorted(server.removed_entity_ids)
    assert sorted(embedded.removed_relation_ids) == sorted(server.removed_relation_ids)
    assert embedded.removed_entity_ids and embedded.removed_relation_ids

    stats, server_stats = await backends.both(gql, STATS_QUERY)
    assert stats == server_stats and stats["stats"]["documents"] == DOCUMENTS - 1
    vectors = await backends.both(lambda c: c.vectors.count())
    assert vectors == (stats["stats"]["chunks"],) * 2
    for query, field in ((ENTITY_EDGES_QUERY, "entities"), (RELATIONS_QUERY, "relations")):
        mine, theirs = await backends.both(full_list, query, field)
        assert mine == theirs, field
    after = {e["id"]: e for e in await full_list(backends.embedded, ENTITIES_QUERY, "entities")}
    assert not set(embedded.removed_entity_ids) & after.keys()
    assert any(  # a shared entity stays, mentioned less
        e["id"] in after and after[e["id"]]["mentionCount"] < e["mentionCount"] for e in before
    )
    hits, server_hits = await backends.both(search, VECTOR_QUERIES[0], "VECTOR")
    assert_same_hits(hits, server_hits)
    assert doc_id not in {doc for _, doc in ranked(hits)}
