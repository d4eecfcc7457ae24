"""Neo4j write throughput: the store's batched transaction against a statement per row.

    python -m tests.benchmarks.neo4j_writes [--paragraphs 200] [--rounds 3]

The server comes from KG_TEST_NEO4J_URL, KG_TEST_NEO4J_USER and KG_TEST_NEO4J_PASSWORD
(as written by ``ops/services/services.sh up``) or the --neo4j-* options. It DELETES
every Document, Chunk, Entity and Relation node of that database: point it at a test
server only.

The data are real bundles: shared-corpus paragraphs cleaned, chunked, run through the
spaCy extractor and resolved as the ingestion pipeline does (no embeddings: the graph
store does not take them). Each path writes every bundle, one document after another
and one transaction per document, into a wiped graph:
- batched: ``Neo4jGraphStore.write_document``, a fixed handful of statements whose rows
  travel as UNWIND lists (``neo4j_graph_writes``);
- per-row: the baseline the batched design replaced, here only: the same clauses
  (MERGE, CREATE, locks, the derived-field refresh and orphan check) with one statement
  per document node, entity, relation, chunk, mention and evidence row. It writes new
  documents only, which is all this benchmark asks of it.
The paths alternate for ``--rounds`` rounds each; the medians are reported. After every
run the graph is compared with the first run's (nodes by label, relationships by type
and a digest of every property); a difference stops the script before it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import neo4j

from app.adapters import neo4j_cypher as cy
from app.adapters.bundle_validation import validate_bundle
from app.adapters.neo4j_connection import Neo4jConnection
from app.adapters.neo4j_graph_store import Neo4jGraphStore
from app.adapters.neo4j_graph_writes import WritePlan, write_bundle
from app.adapters.neo4j_support import DEFAULT_QUERY_TIMEOUT, build_driver, parse_target
from app.adapters.sentence_transformer_embedder import SentenceTransformerEmbedder
from app.adapters.spacy_extractor import SpacyExtractor
from app.config import LimitSettings, PipelineSettings
from app.domain.ids import chunk_id, document_id
from app.domain.models import Chunk, Document, DocumentBundle, DocumentInput
from app.pipeline.chunking import chunk_text
from app.pipeline.resolution import resolve_document
from app.services.validation import clean_document
from tests.benchmarks.common import corpus, write_section

Tx = neo4j.AsyncManagedTransaction

# --- data: bundles as the pipeline makes them --------------------------------------------


def make_bundles(rows: list[dict[str, Any]]) -> list[DocumentBundle]:
    """The pipeline's stages up to STORED, without the embeddings: clean, chunk (the
    embedder's tokenizer counts tokens), extract, resolve. Duplicates are written once."""
    settings = PipelineSettings()
    extractor = SpacyExtractor(settings.spacy_model)
    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    extractor.load()
    limits = LimitSettings()
    docs: dict[str, DocumentInput] = {}
    for r in rows:
        doc = clean_document(DocumentInput(r["title"], r["text"], r.get("source")), limits)
        docs.setdefault(document_id(doc.title, doc.text), doc)
    target = min(settings.chunk_tokens, embedder.max_tokens)
    sentences = extractor.sentences([d.text for d in docs.values()])
    per_doc: list[list[Chunk]] = []
    for (doc_id, doc), spans in zip(docs.items(), sentences, strict=True):
        pieces = chunk_text(
            doc.text,
            spans,
            embedder.count_tokens,
            target_tokens=target,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
        per_doc.append(
            [
                Chunk(
                    chunk_id(doc_id, p.index),
                    doc_id,
                    p.index,
                    p.text,
                    p.start,
                    p.end,
                    p.token_count,
                )
                for p in pieces
            ]
        )
    extracted = iter(extractor.extract([c.text for chunks in per_doc for c in chunks]))
    now = datetime.now(UTC)
    bundles = []
    for (doc_id, doc), chunks in zip(docs.items(), per_doc, strict=True):
        resolved = resolve_document(doc_id, chunks, [next(extracted) for _ in chunks])
        document = Document(
            doc_id,
            doc.title,
            doc.text,
            doc.source,
            doc.published_at,
            now,
            doc.metadata,
            len(chunks),
        )
        bundles.append(
            DocumentBundle(
                document,
                tuple(chunks),
                resolved.entities,
                resolved.mentions,
                resolved.relations,
                resolved.evidence,
            )
        )
    return bundles


def rows_of(bundle: DocumentBundle) -> int:
    """Rows a document writes: itself, its chunks, entities, mentions, relations, evidence."""
    b = bundle
    return (
        1 + len(b.chunks) + len(b.entities) + len(b.mentions) + len(b.relations) + len(b.evidence)
    )


# --- the per-row baseline ----------------------------------------------------------------

ROW_ENTITY = """
    MERGE (e:Entity {id: $id})
    ON CREATE SET e.key = $key, e.name = $name, e.name_folded = $name_folded,
                  e.type = $type, e.aliases = [], e.mention_count = 0
    SET e._lock = true
    REMOVE e._lock
    WITH e
    WHERE size($name) > size(e.name) OR (size($name) = size(e.name) AND $name < e.name)
    SET e.name = $name, e.name_folded = $name_folded
"""
ROW_RELATION = """
    MATCH (s:Entity {id: $source_id}), (t:Entity {id: $target_id})
    MERGE (r:Relation {id: $id})
    ON CREATE SET r.type = $type, r.source_id = $source_id, r.target_id = $target_id,
                  r.confidence = $confidence
    SET r._lock = true
    REMOVE r._lock
    MERGE (r)-[:SOURCE]->(s)
    MERGE (r)-[:TARGET]->(t)
    RETURN count(r) AS found
"""
ROW_CHUNK = """
    MATCH (d:Document {id: $document_id})
    CREATE (d)-[:HAS_CHUNK]->(c:Chunk {id: $id, document_id: d.id, index: $index,
        text: $text, start: $start, end: $end, token_count: $token_count, words: $words})
    RETURN count(c) AS found
"""
ROW_MENTION = """
    MATCH (c:Chunk {id: $chunk_id}), (e:Entity {id: $entity_id})
    MERGE (c)-[m:MENTIONS {start: $start, end: $end}]->(e)
    ON CREATE SET m.text = $text
    RETURN count(*) AS found
"""
ROW_EVIDENCE = """
    MATCH (r:Relation {id: $relation_id}), (c:Chunk {id: $chunk_id})
    MERGE (r)-[v:EVIDENCED_BY {text: $text}]->(c)
    ON CREATE SET v.confidence = $confidence
    ON MATCH SET v.confidence =
        CASE WHEN $confidence > v.confidence THEN $confidence ELSE v.confidence END
    RETURN count(*) AS found
"""
# The orphan check and the refresh of one entity, then of one relation (entities first,
# so a relation that lost an end is seen as such).
ROW_REFRESH_ENTITY = """
    MATCH (e:Entity {id: $id})
    WITH e, COUNT { (e)<-[:MENTIONS]-() } AS n,
         COLLECT { MATCH (e)<-[m:MENTIONS]-() WHERE m.text <> e.name
                   RETURN DISTINCT m.text } AS aliases
    FOREACH (_ IN CASE WHEN n = 0 THEN [1] ELSE [] END | DETACH DELETE e)
    FOREACH (_ IN CASE WHEN n > 0 THEN [1] ELSE [] END |
             SET e.mention_count = n, e.aliases = aliases)
"""
ROW_REFRESH_RELATION = """
    MATCH (r:Relation {id: $id})
    OPTIONAL MATCH (r)-[v:EVIDENCED_BY]->()
    WITH r, max(v.confidence) AS best, count(v) AS n
    WITH r, best, n > 0 AND EXISTS { (r)-[:SOURCE]->() } AND EXISTS { (r)-[:TARGET]->() }
         AS alive
    FOREACH (_ IN CASE WHEN alive THEN [] ELSE [1] END | DETACH DELETE r)
    FOREACH (_ IN CASE WHEN alive THEN [1] ELSE [] END |
             SET r.confidence = coalesce(best, r.confidence))
"""


async def write_per_row(tx: Tx, plan: WritePlan) -> int:
    """The per-row transaction of one new document; returns its statement count."""
    count = 0

    async def run(query: str, params: dict[str, Any]) -> list[neo4j.Record]:
        nonlocal count
        count += 1
        return [r async for r in await tx.run(query, params)]

    async def each(query: str, rows: list[dict[str, Any]], what: str) -> None:
        for row in rows:
            found = await run(query, row)
            if found and found[0]["found"] != 1:
                raise RuntimeError(f"{plan.document_id}: a {what} row found no end: {row}")

    (doc,) = await run(cy.UPSERT_DOCUMENT, plan.document)
    (old,) = await run(cy.FOOTPRINT, {"id": plan.document_id})
    if not doc["present"] or old["chunks"]:
        raise RuntimeError(f"the per-row path writes new documents only: {plan.document_id}")
    await each(ROW_ENTITY, plan.entities, "entity")
    await each(ROW_RELATION, plan.relations, "relation")
    await each(ROW_CHUNK, plan.chunks, "chunk")
    await each(ROW_MENTION, plan.mentions, "mention")
    await each(ROW_EVIDENCE, plan.evidence, "evidence")
    await each(ROW_REFRESH_ENTITY, [{"id": e["id"]} for e in plan.entities], "refresh")
    await each(ROW_REFRESH_RELATION, [{"id": r["id"]} for r in plan.relations], "refresh")
    return count


# --- runs ----------------------------------------------------------------------------------

OUR_NODES = "(n:Document OR n:Chunk OR n:Entity OR n:Relation)"
WIPE = f"MATCH (n) WHERE {OUR_NODES} CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF 10000 ROWS"
NODE_COUNTS = (
    f"MATCH (n) WHERE {OUR_NODES} UNWIND labels(n) AS label "
    "RETURN label AS name, count(*) AS n ORDER BY name"
)
RELATIONSHIP_COUNTS = (
    f"MATCH (n)-[r]->() WHERE {OUR_NODES} RETURN type(r) AS name, count(*) AS n ORDER BY name"
)
NODES = f"MATCH (n) WHERE {OUR_NODES} RETURN labels(n) AS labels, properties(n) AS props"
RELATIONSHIPS = (
    f"MATCH (n)-[r]->(m) WHERE {OUR_NODES} "
    "RETURN type(r) AS type, n.id AS start, m.id AS end, properties(r) AS props"
)


@dataclass(frozen=True)
class Snapshot:
    """What a run left: counts of nodes by label and relationships by type, and a
    digest of every node's and relationship's properties (lists sorted: aliases are a set)."""

    nodes: tuple[tuple[str, int], ...]
    relationships: tuple[tuple[str, int], ...]
    digest: str


@dataclass(frozen=True)
class Run:
    path: str
    seconds: float
    statements: int
    snapshot: Snapshot


class Bench:
    def __init__(self, driver: neo4j.AsyncDriver) -> None:
        self.driver = driver
        self.store = Neo4jGraphStore(Neo4jConnection.borrowed(driver))

    def session(self) -> neo4j.AsyncSession:
        """A session as the store opens one."""
        return self.driver.session(bookmark_manager=self.driver.execute_query_bookmark_manager)

    async def wipe(self) -> None:
        async with self.driver.session() as session:
            await (await session.run(WIPE)).consume()

    async def batched(self, bundles: Sequence[DocumentBundle]) -> int:
        for bundle in bundles:
            await self.store.write_document(bundle)
        return 0  # counted apart, by batched_statements

    async def per_row(self, bundles: Sequence[DocumentBundle]) -> int:
        statements = 0
        work = neo4j.unit_of_work(timeout=DEFAULT_QUERY_TIMEOUT)(write_per_row)
        for bundle in bundles:  # as write_document does: check, plan, a session each
            validate_bundle(bundle)
            plan = WritePlan.of(bundle)
            async with self.session() as session:
                statements += await session.execute_write(work, plan)
        return statements

    async def batched_statements(self, bundles: Sequence[DocumentBundle]) -> int:
        """The statements ``write_bundle`` runs for each bundle, counted inside a
        transaction that is rolled back (untimed: the timed runs go through the store)."""
        total = 0
        async with self.session() as session:
            for bundle in bundles:
                tx = await session.begin_transaction()
                counter = _CountingTx(tx)
                try:
                    await write_bundle(cast(Tx, counter), WritePlan.of(bundle))
                finally:
                    await tx.rollback()
                total += counter.statements
        return total

    async def timed(
        self,
        path: str,
        write: Callable[[Sequence[DocumentBundle]], Awaitable[int]],
        bundles: Sequence[DocumentBundle],
    ) -> Run:
        await self.wipe()
        t0 = time.perf_counter()
        statements = await write(bundles)
        seconds = time.perf_counter() - t0
        return Run(path, seconds, statements, await self.snapshot())

    async def snapshot(self) -> Snapshot:
        async def read(query: str) -> list[neo4j.Record]:
            return list((await self.driver.execute_query(query)).records)

        lines = sorted(
            [_canonical(["node", sorted(r["labels"]), r["props"]]) for r in await read(NODES)]
            + [
                _canonical(["rel", r["type"], r["start"], r["end"], r["props"]])
                for r in await read(RELATIONSHIPS)
            ]
        )
        return Snapshot(
            nodes=tuple((r["name"], r["n"]) for r in await read(NODE_COUNTS)),
            relationships=tuple((r["name"], r["n"]) for r in await read(RELATIONSHIP_COUNTS)),
            digest=hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        )

    async def server_version(self) -> str:
        records = (await self.driver.execute_query(cy.SERVER_VERSION)).records
        return str(records[0]["version"]) if records else "unknown"


class _CountingTx:
    """A transaction that counts the statements run through it."""

    def __init__(self, tx: neo4j.AsyncTransaction) -> None:
        self._tx = tx
        self.statements = 0

    async def run(self, query: str, parameters: dict[str, Any] | None = None) -> neo4j.AsyncResult:
        self.statements += 1
        return await self._tx.run(query, parameters)


def _canonical(value: Any) -> str:
    def sort_lists(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: sort_lists(x) for k, x in v.items()}
        if isinstance(v, list):
            return sorted((sort_lists(x) for x in v), key=repr)
        return v

    return json.dumps(sort_lists(value), sort_keys=True, default=str)


# --- the benchmark ---------------------------------------------------------------------


async def bench(
    bundles: list[DocumentBundle], url: str, user: str | None, password: str | None, rounds: int
) -> tuple[list[Run], int, str]:
    driver = build_driver(parse_target(url, user, password))
    try:
        b = Bench(driver)
        await b.store.start()  # constraints and indexes, as in production
        version = await b.server_version()
        warm = bundles[: min(50, len(bundles))]
        for write in (b.batched, b.per_row):  # plans and caches warm, outside the timings
            await b.wipe()
            await write(warm)
        await b.wipe()
        batched_statements = await b.batched_statements(bundles)
        runs: list[Run] = []
        for i in range(rounds):
            order = [("batched", b.batched), ("per-row", b.per_row)]
            for path, write in order if i % 2 == 0 else order[::-1]:
                run = await b.timed(path, write, bundles)
                print(f"round {i + 1}: {path} {run.seconds:.2f} s", flush=True)
                runs.append(run)
        await b.wipe()
        return runs, batched_statements, version
    finally:
        await driver.close()


def report(
    bundles: list[DocumentBundle], paragraphs: int, runs: list[Run], batched_statements: int
) -> tuple[str, float]:
    n = len(bundles)
    rows = sum(rows_of(b) for b in bundles)

    def median(path: str) -> float:
        return statistics.median(r.seconds for r in runs if r.path == path)

    def line(path: str, label: str, statements: int) -> str:
        s = median(path)
        every = ", ".join(f"{r.seconds:.2f}" for r in runs if r.path == path)
        return (
            f"| {label} | {n / s:.1f} | {rows / s:.0f} | {statements / n:.1f} | {s:.2f} ({every}) |"
        )

    per_row_statements = next(r.statements for r in runs if r.path == "per-row")
    ratio = median("per-row") / median("batched")
    snap = runs[0].snapshot

    def mean(attr: str) -> float:
        return sum(len(getattr(b, attr)) for b in bundles) / n

    lines = [
        f"### {n} documents ({paragraphs} corpus paragraphs): per document "
        f"{mean('chunks'):.1f} chunks, {mean('entities'):.1f} entities, "
        f"{mean('mentions'):.1f} mentions, {mean('relations'):.1f} relations, "
        f"{mean('evidence'):.1f} evidence rows ({rows / n:.1f} rows)",
        "",
        "| path | documents/s | rows/s | statements/document | seconds: median (every run) |",
        "|---|---|---|---|---|",
        line("batched", "batched: `write_document` (UNWIND)", batched_statements),
        line("per-row", "per-row: a statement per row", per_row_statements),
        "",
        f"Batched / per-row = **{ratio:.2f}x** documents/s (median of {len(runs) // 2} "
        "runs each, alternated, each on a wiped graph).",
        "",
        "Every run left the same graph: nodes "
        + ", ".join(f"{k} {v}" for k, v in snap.nodes)
        + "; relationships "
        + ", ".join(f"{k} {v}" for k, v in snap.relationships)
        + f"; property digest `{snap.digest[:12]}`.",
    ]
    return "\n".join(lines), ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--paragraphs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each path")
    parser.add_argument("--neo4j-url", default=os.environ.get("KG_TEST_NEO4J_URL"))
    parser.add_argument("--neo4j-user", default=os.environ.get("KG_TEST_NEO4J_USER") or "neo4j")
    parser.add_argument("--neo4j-password", default=os.environ.get("KG_TEST_NEO4J_PASSWORD"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not args.neo4j_url:
        parser.error(
            "no Neo4j server: set KG_TEST_NEO4J_URL (with KG_TEST_NEO4J_USER and "
            "KG_TEST_NEO4J_PASSWORD) or pass --neo4j-url; `bash ops/services/services.sh up` "
            "starts a test server and writes them to .services/env"
        )
    if args.paragraphs < 1 or args.rounds < 1:
        parser.error("--paragraphs and --rounds must be at least 1")

    t0 = time.perf_counter()
    bundles = make_bundles(corpus(args.paragraphs))
    print(f"{len(bundles)} bundles built in {time.perf_counter() - t0:.1f} s", flush=True)
    load_before = os.getloadavg()[0]
    runs, batched_statements, version = asyncio.run(
        bench(bundles, args.neo4j_url, args.neo4j_user, args.neo4j_password or None, args.rounds)
    )
    load_after = os.getloadavg()[0]
    different = [r for r in runs if r.snapshot != runs[0].snapshot]
    if different:
        for r in runs:
            print(f"{r.path} {r.seconds:.2f} s: {r.snapshot}", file=sys.stderr)
        sys.exit("the two paths left different graphs: nothing reported")
    expected = {"Document": len(bundles), "Chunk": sum(len(b.chunks) for b in bundles)}
    found = dict(runs[0].snapshot.nodes)
    if any(found.get(k) != v for k, v in expected.items()):
        sys.exit(f"the graph holds {found}, expected {expected}: nothing reported")

    text, _ = report(bundles, args.paragraphs, runs, batched_statements)
    print(text, flush=True)
    header = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} cores shared by the client and Neo4j {version} (loopback Bolt, "
        "heap 512m-1g, page cache 256m: `ops/services/services.sh`) and other work (load "
        f"average {load_before:.1f} at the start, {load_after:.1f} at the end). "
        "One client writes the "
        "documents one after another, one transaction each, into a wiped graph (schema "
        "kept); bundles come from the real pipeline (spaCy extraction and resolution). "
        "Reproduce, with KG_TEST_NEO4J_URL/_USER/_PASSWORD set (`. .services/env`): "
        f"`python -m tests.benchmarks.neo4j_writes --paragraphs {args.paragraphs} "
        f"--rounds {args.rounds}`."
    )
    if not args.no_write:
        write_section("Neo4j writes: batched against per-row", header + "\n\n" + text)


if __name__ == "__main__":
    main()
