"""``ask`` and ``askStream`` answered by the real Ollama server (``KG_LLM_URL=ollama://``)
through the GraphQL schema, on the real wiring over the embedded stores.

The model (Gemma 3 270M, a base model) is tiny: what is asserted of its words is what
holds for it. What the server promises is asserted exactly: the answer names the model,
every citation survives the checks (a passage of the context, a quote found verbatim in
the cited chunk), and the streamed text is the answer's text. Runs with
``KG_TEST_SERVICES=1`` (``make services-up``; ``. .services/env``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.config import load_settings
from app.container import Container, build_container, make_embedder, make_extractor
from app.domain.models import DocumentInput
from app.security.authenticate import LOCAL_PRINCIPAL
from app.server import services_of
from graphql_schema.context import Context
from graphql_schema.schema import schema
from tests.integration.corpus_run import ingest_all

pytestmark = pytest.mark.skipif(
    os.environ.get("KG_TEST_SERVICES") != "1",
    reason="needs the real Ollama server: make services-up, then . .services/env",
)

OLLAMA_URL = os.environ.get("KG_TEST_OLLAMA_URL", "ollama://127.0.0.1:11434")
MODEL = os.environ.get("KG_TEST_OLLAMA_MODEL", "gemma3:270m")
ANSWER = """answer model supported mode
  citations { quote chunk { id text } document { title } }
  context { chunk { id } document { title } }"""
ASK = f"query($q: String!) {{ ask(question: $q, k: 2, mode: NAIVE) {{ {ANSWER} }} }}"
ASK_STREAM = f"""subscription($q: String!) {{ askStream(question: $q, k: 2, mode: NAIVE) {{
  delta done answer {{ {ANSWER} }} }} }}"""
DOCUMENTS = [
    DocumentInput(
        title="Eiffel Tower",
        text="The Eiffel Tower is a wrought-iron tower in Paris, France. "
        "It was completed in 1889 for the World's Fair.",
    ),
    DocumentInput(
        title="Great Wall",
        text="The Great Wall of China is a series of fortifications in northern China.",
    ),
]


@pytest.fixture(scope="module")
async def container(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Container]:
    defaults = load_settings()
    c = build_container(
        load_settings(
            data_dir=tmp_path_factory.mktemp("ask-ollama"),
            llm_url=OLLAMA_URL,
            llm={"model": MODEL, "max_answer_tokens": 64, "context_window": 2048},
            pipeline={"workers": 1},
        ),
        extractor=make_extractor(defaults),
        embedder=make_embedder(defaults),
    )
    await c.start()  # checks that the server has the model
    await c.wait_ready()
    await ingest_all(c, DOCUMENTS)
    yield c
    await c.close()


def context_of(c: Container) -> Context:
    services = services_of(c)
    return Context(services=services, request_id="ask-ollama", principal=LOCAL_PRINCIPAL)


def assert_checked(answer: dict[str, Any]) -> None:
    assert answer["model"] == f"ollama:{MODEL}" and answer["mode"] == "NAIVE"
    assert answer["answer"].strip()
    context_ids = [p["chunk"]["id"] for p in answer["context"]]
    assert len(context_ids) == 2
    for citation in answer["citations"]:
        assert citation["chunk"]["id"] in context_ids
        assert citation["quote"] and citation["quote"] in citation["chunk"]["text"]
    if answer["supported"]:  # an answer is supported only by what it cites
        assert answer["citations"]


async def test_ask_through_ollama_gives_a_checked_answer(container: Container) -> None:
    result = await schema.execute(
        ASK,
        variable_values={"q": "When was the Eiffel Tower completed?"},
        context_value=context_of(container),
    )
    assert result.errors is None, result.errors
    assert result.data is not None
    answer = result.data["ask"]
    assert_checked(answer)
    assert answer["context"][0]["document"]["title"] == "Eiffel Tower"


async def test_ask_stream_through_ollama_streams_tokens_then_the_answer(
    container: Container,
) -> None:
    stream = await schema.subscribe(
        ASK_STREAM,
        variable_values={"q": "Where is the Great Wall?"},
        context_value=context_of(container),
    )
    assert not hasattr(stream, "errors"), stream
    items = [item async for item in stream]
    assert all(item.errors is None for item in items), [item.errors for item in items]
    chunks = [item.data["askStream"] for item in items if item.data is not None]
    *deltas, last = chunks
    assert len(deltas) >= 2  # token by token, not one piece
    assert last["done"] is True and not any(d["done"] for d in deltas)
    assert "".join(d["delta"] for d in deltas) == last["answer"]["answer"]
    assert_checked(last["answer"])
