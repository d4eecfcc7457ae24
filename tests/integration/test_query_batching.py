"""Count, don't hope: a nested query over 50 documents costs a constant number of graph
store calls, the same as over 5 (the DataLoaders batch every edge)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.config import load_settings
from app.container import Container, build_container
from app.domain.models import DocumentBundle
from app.observability.instrument import CallCounter
from app.security.authenticate import LOCAL_PRINCIPAL
from app.server import services_of
from graphql_schema.context import Context
from graphql_schema.schema import schema
from tests.contract.bundles import BundleBuilder, Spec

NESTED = """query($n: Int) {
  documents(first: $n) { totalCount edges { node { title
    chunks(first: 5) { edges { node { index text entities { name } } } }
    entities(first: 10) { totalCount edges { node { name type mentionCount
      documents(first: 3) { totalCount edges { node { title } } }
      relations(first: 10) { totalCount edges { node { type confidence
        source { name } target { name }
        evidence { text chunk { index } document { title } }
      } } }
    } } }
  } } }
}"""


def bundle(i: int) -> DocumentBundle:
    person = Spec(f"Person {i}", "PERSON")
    org = Spec(f"Org {i % 5}", "ORG")
    city = Spec(f"City {i % 7}", "GPE")
    b = BundleBuilder(
        title=f"Doc {i}", ingested_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
    )
    s1 = f"{person.name} works for {org.name}."
    s2 = f"{org.name} is based in {city.name}."
    c0 = b.chunk(s1)
    c1 = b.chunk(s2)
    b.mention(c0, person.name, person)
    b.mention(c0, org.name, org)
    b.mention(c1, org.name, org)
    b.mention(c1, city.name, city)
    b.relation(person, "WORK_FOR", org, c0, s1, 0.7)
    b.relation(org, "BASE_IN", city, c1, s2, 0.7)
    return b.build()


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    c = build_container(load_settings(data_dir=tmp_path))
    await c.start(workers=False)
    for i in range(50):
        await c.graph.write_document(bundle(i))
    yield c
    await c.close()


async def run(c: Container, n: int) -> dict[str, int]:
    counter = CallCounter("graph")
    context = Context(
        services=services_of(c),
        request_id="test",
        principal=LOCAL_PRINCIPAL,
    )
    result = await schema.execute(NESTED, variable_values={"n": n}, context_value=context)
    assert result.errors is None, result.errors
    assert result.data is not None
    docs = result.data["documents"]["edges"]
    assert len(docs) == n
    rels = [
        r
        for d in docs
        for e in d["node"]["entities"]["edges"]
        for r in e["node"]["relations"]["edges"]
    ]
    assert len(rels) >= 2 * n  # the query really walks relations and their evidence
    return counter.calls_since()


async def test_nested_query_costs_constant_backend_calls(container: Container) -> None:
    small = await run(container, 5)
    large = await run(container, 50)
    assert large == small, (small, large)
    # One call per edge kind: documents, chunks, entities of chunks and of documents,
    # documents of entities, relations, entities of relations, evidence, and the chunk
    # and document of each evidence.
    assert sum(large.values()) <= 10, large
    assert all(n == 1 for n in large.values()), large
