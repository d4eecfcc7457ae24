"""OllamaGenerator against a real Ollama server (``ops/services/ollama.sh``, started by
``make services-up``) serving the small Gemma 3 270M model.

Runs when ``KG_TEST_SERVICES=1`` (``. .services/env`` sets it with ``KG_TEST_OLLAMA_URL``
and ``KG_TEST_OLLAMA_MODEL``); skipped otherwise. The model is tiny and a base model, so
what is asserted of its words is only what holds for it: the protocol (deltas, one
``Generated`` last, text equal to the deltas, citations in range) is asserted exactly.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

import pytest

from app.adapters.ollama_generator import OllamaGenerator
from app.config import LlmSettings
from app.domain.errors import BackendError, UnavailableError
from app.ports.generator import Generated, Passage

pytestmark = pytest.mark.skipif(
    os.environ.get("KG_TEST_SERVICES") != "1",
    reason="needs the real Ollama server: run `make services-up`, then `. .services/env` "
    "(sets KG_TEST_SERVICES=1, KG_TEST_OLLAMA_URL and KG_TEST_OLLAMA_MODEL)",
)

OLLAMA_URL = os.environ.get("KG_TEST_OLLAMA_URL", "ollama://127.0.0.1:11434")
MODEL = os.environ.get("KG_TEST_OLLAMA_MODEL", "gemma3:270m")

PASSAGES = (
    Passage(
        number=1,
        chunk_id="c-wall",
        document_id="d-wall",
        title="Great Wall",
        text="The Great Wall of China is a series of fortifications in northern China.",
    ),
    Passage(
        number=2,
        chunk_id="c-tower",
        document_id="d-tower",
        title="Eiffel Tower",
        text="The Eiffel Tower is a wrought-iron tower in Paris, France. It was completed in 1889.",
    ),
)
QUESTION = "When was the Eiffel Tower completed?"


def _host(url: str) -> str:
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "ollama+https" else "http"
    return f"{scheme}://{parts.netloc}"


def _settings(**changes: object) -> LlmSettings:
    return LlmSettings(model=MODEL, max_answer_tokens=64, context_window=2048).model_copy(
        update=changes
    )


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _collect(
    generator: OllamaGenerator, question: str, passages: Sequence[Passage]
) -> list[str | Generated]:
    return [item async for item in generator.stream(question, passages)]


@pytest.fixture
async def generator() -> AsyncIterator[OllamaGenerator]:
    gen = OllamaGenerator(_host(OLLAMA_URL), _settings())
    await gen.start()
    yield gen
    await gen.close()


async def test_streams_several_deltas_then_exactly_one_generated_last(
    generator: OllamaGenerator,
) -> None:
    items = await _collect(generator, QUESTION, PASSAGES)
    deltas = [item for item in items[:-1] if isinstance(item, str)]
    generated = items[-1]
    assert isinstance(generated, Generated)
    assert len(deltas) == len(items) - 1  # nothing but text before the one Generated
    assert len(deltas) >= 2, f"expected a streamed answer, got {items!r}"
    assert "".join(deltas) == generated.text
    assert generated.model == f"ollama:{MODEL}" == generator.name
    assert {c.passage for c in generated.citations} <= {1, 2}
    assert len({c.passage for c in generated.citations}) == len(generated.citations)


async def test_answers_an_easy_question_from_its_passage(generator: OllamaGenerator) -> None:
    items = await _collect(generator, QUESTION, PASSAGES)
    generated = items[-1]
    assert isinstance(generated, Generated)
    assert "1889" in generated.text, generated.text
    assert generated.supported
    assert 2 in {c.passage for c in generated.citations}, generated.text


async def test_start_and_close_are_idempotent_and_close_then_stream_reconnects() -> None:
    gen = OllamaGenerator(_host(OLLAMA_URL), _settings())
    await gen.start()
    await gen.start()
    await gen.close()
    await gen.close()
    items = await _collect(gen, QUESTION, PASSAGES)
    assert isinstance(items[-1], Generated)
    await gen.close()


async def test_a_consumer_that_stops_early_leaves_the_generator_usable(
    generator: OllamaGenerator,
) -> None:
    stream = generator.stream(QUESTION, PASSAGES)
    first = await anext(stream)
    assert isinstance(first, str) and first
    await stream.aclose()  # closes the HTTP stream; the server cancels the request
    items = await _collect(generator, QUESTION, PASSAGES)
    assert isinstance(items[-1], Generated)


async def test_server_down_is_unavailable_quickly_at_start_and_in_stream() -> None:
    host = f"http://127.0.0.1:{_unused_port()}"
    gen = OllamaGenerator(host, _settings(connect_timeout=2.0))
    began = time.monotonic()
    with pytest.raises(UnavailableError) as at_start:
        await gen.start()
    assert host in at_start.value.message and "ollama.sh start" in at_start.value.message
    assert at_start.value.retryable
    assert at_start.value.__cause__ is not None
    with pytest.raises(UnavailableError) as in_stream:
        await _collect(gen, QUESTION, PASSAGES)
    assert host in in_stream.value.message
    assert time.monotonic() - began < 5.0
    await gen.close()


async def test_unknown_host_name_is_unavailable() -> None:
    gen = OllamaGenerator("http://no-such-host.invalid:11434", _settings(connect_timeout=2.0))
    with pytest.raises(UnavailableError, match="cannot be reached"):
        await gen.start()
    await gen.close()


async def test_unknown_model_is_unavailable_at_start_saying_how_to_get_it() -> None:
    gen = OllamaGenerator(_host(OLLAMA_URL), _settings(model="no-such-model:0.1b"))
    with pytest.raises(UnavailableError) as raised:
        await gen.start()
    message = raised.value.message
    assert "no-such-model:0.1b" in message and "ollama pull no-such-model:0.1b" in message
    assert gen.name == "ollama:no-such-model:0.1b"
    with pytest.raises(UnavailableError, match="ollama pull"):  # and so does a question
        await _collect(gen, QUESTION, PASSAGES)
    await gen.close()


async def test_a_model_name_the_server_refuses_is_a_backend_error() -> None:
    gen = OllamaGenerator(_host(OLLAMA_URL), _settings(model="bad name!!"))
    with pytest.raises(BackendError) as raised:
        await gen.start()
    assert "bad name!!" in raised.value.message and "HTTP 500" in raised.value.message
    assert not raised.value.retryable
    await gen.close()


async def test_an_answer_past_the_timeout_is_unavailable() -> None:
    timeout = 1.0
    gen = OllamaGenerator(_host(OLLAMA_URL), _settings(timeout=timeout, max_answer_tokens=1024))
    await gen.start()
    count = ", ".join(str(n) for n in range(1, 11))
    began = time.monotonic()
    with pytest.raises(UnavailableError, match="KG_LLM__TIMEOUT") as raised:
        await _collect(gen, f"Continue counting up to 3000: {count},", PASSAGES)
    assert isinstance(raised.value.__cause__, TimeoutError)
    assert time.monotonic() - began < timeout + 2.0
    await gen.close()
