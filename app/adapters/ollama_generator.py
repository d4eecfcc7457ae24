"""Generator on an Ollama server (``KG_LLM_URL=ollama://host:port``), with the ollama client.

The question and the numbered passages go out as one chat turn (``ollama_prompt``); the
answer streams back and each text delta is yielded as it arrives (the first few held
until a leading ``Answer:`` label is known and dropped), then one ``Generated`` with the
``[n]`` citations read from the whole text. If the model says nothing at all, the
instructed refusal is yielded instead, so the text always says something.

Settings (``LlmSettings``): temperature, ``num_predict`` = max_answer_tokens, ``num_ctx``
= context_window, keep_alive; ``connect_timeout`` bounds connecting, ``timeout`` the
whole answer (a deadline over the stream, checked at every read).

Failures become our errors at this boundary, chained with ``from``:
- server unreachable (refused, DNS, TLS), any timeout, the stream cut, HTTP 429/502/503/
  504: ``UnavailableError`` naming the host and what to do;
- the model missing (HTTP 404): ``UnavailableError`` saying to pull or create it;
- any other error the server answers: ``BackendError``.
``start`` asks the server for the model (``/api/show``), so a wrong URL or model stops
start-up with that message instead of failing the first question.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import NoReturn

import httpx
from ollama import AsyncClient, ChatResponse, RequestError, ResponseError

from app.adapters.ollama_prompt import (
    NOT_IN_PASSAGES,
    PROMPT_OVERHEAD_TOKENS,
    answer_head,
    build_prompt,
    read_answer,
)
from app.config import LlmSettings
from app.domain.errors import BackendError, ConfigurationError, UnavailableError
from app.ports.generator import Generated, Passage

_UNAVAILABLE_STATUS = frozenset({429, 502, 503, 504})
# What the client and its transport raise: timeouts, sockets (the client turns a refused
# connection into the builtin ConnectionError), HTTP, the server's errors, and a reply
# that is not the JSON it should be (ValueError, pydantic's ValidationError among them).
_DRIVER_ERRORS = (TimeoutError, OSError, httpx.HTTPError, ResponseError, RequestError, ValueError)
MIN_PASSAGE_TOKENS = 256  # context left for passages, or the settings are refused
START_CHECK_SECONDS = 30.0  # /api/show answers in milliseconds unless the server is stuck


class OllamaGenerator:
    """The Generator port on an Ollama server; see the module docstring."""

    def __init__(self, host: str, settings: LlmSettings) -> None:
        if not host.startswith(("http://", "https://")):
            raise ConfigurationError(f"Ollama host {host!r} must start with http:// or https://")
        room = settings.context_window - settings.max_answer_tokens - PROMPT_OVERHEAD_TOKENS
        if room < MIN_PASSAGE_TOKENS:
            raise ConfigurationError(
                f"KG_LLM__CONTEXT_WINDOW ({settings.context_window}) leaves {max(room, 0)} "
                f"tokens for passages beside KG_LLM__MAX_ANSWER_TOKENS "
                f"({settings.max_answer_tokens}) and the instructions; at least "
                f"{MIN_PASSAGE_TOKENS} are needed: raise the one or lower the other"
            )
        self.host = host
        self.model = settings.model
        self.name = f"ollama:{settings.model}"
        self._settings = settings
        self._client: AsyncClient | None = None
        self._checked = False

    def _connect(self) -> AsyncClient:
        if self._client is None:
            timeout = httpx.Timeout(self._settings.timeout, connect=self._settings.connect_timeout)
            self._client = AsyncClient(host=self.host, timeout=timeout)
        return self._client

    async def start(self) -> None:
        """Check that the server answers and has the model (once)."""
        if self._checked:
            return
        client = self._connect()
        try:
            async with asyncio.timeout(self._settings.connect_timeout + START_CHECK_SECONDS):
                await client.show(self.model)
        except _DRIVER_ERRORS as exc:
            self._fail(exc)
        self._checked = True

    async def close(self) -> None:
        client, self._client = self._client, None
        self._checked = False
        if client is not None:
            await client.close()  # type: ignore[no-untyped-call]  # ollama leaves it unannotated

    async def stream(
        self, question: str, passages: Sequence[Passage]
    ) -> AsyncGenerator[str | Generated, None]:
        """Text deltas as the model writes them, then one ``Generated`` (an async
        generator: ``aclose`` ends the HTTP stream when a consumer stops early)."""
        s = self._settings
        prompt = build_prompt(question, passages, s.context_window, s.max_answer_tokens)
        client = self._connect()
        deadline = asyncio.get_running_loop().time() + s.timeout
        parts: list[str] = []
        head = ""  # the first text, held back until answer_head knows where the answer starts
        responses: AsyncIterator[ChatResponse] | None = None
        try:
            async with asyncio.timeout_at(deadline):
                responses = await client.chat(
                    model=self.model,
                    messages=list(prompt.messages),
                    stream=True,
                    options={
                        "temperature": s.temperature,
                        "num_predict": s.max_answer_tokens,
                        "num_ctx": s.context_window,
                    },
                    keep_alive=s.keep_alive,
                )
            while True:
                # The deadline is absolute, but its scope opens around each read only:
                # left open across a yield, it would cancel the consumer instead.
                async with asyncio.timeout_at(deadline):
                    response = await anext(responses, None)
                if response is None:
                    break
                delta = response.message.content or ""
                if delta and not parts:
                    head += delta
                    delta = answer_head(head, final=False) or ""
                if delta:
                    parts.append(delta)
                    yield delta
        except _DRIVER_ERRORS as exc:
            self._fail(exc, timed_out_after=s.timeout)
        finally:
            if responses is not None:
                await _close_stream(responses)
        if not parts and (rest := answer_head(head, final=True)):
            parts.append(rest)
            yield rest
        text = "".join(parts)
        if not text.strip():
            yield NOT_IN_PASSAGES
            text += NOT_IN_PASSAGES
        answer = read_answer(text, prompt.numbers)
        yield Generated(
            text=text, citations=answer.citations, model=self.name, supported=answer.supported
        )

    def _fail(self, exc: BaseException, timed_out_after: float | None = None) -> NoReturn:
        """Raise the KGError that ``exc`` means (see the module docstring)."""
        where = f"Ollama at {self.host}"
        retry = "check that it runs (ops/services/ollama.sh start) and that KG_LLM_URL names it"
        if isinstance(exc, TimeoutError | httpx.TimeoutException):
            limit = f" within {timed_out_after:g}s (KG_LLM__TIMEOUT)" if timed_out_after else ""
            raise UnavailableError(
                f"{where} did not answer{limit} with model {self.model!r}; it may be "
                f"overloaded or stuck: {retry}"
            ) from exc
        if isinstance(exc, OSError | httpx.TransportError):
            raise UnavailableError(
                f"{where} cannot be reached ({type(exc).__name__}: {exc}); {retry}"
            ) from exc
        if isinstance(exc, ResponseError):
            if exc.status_code == 404:
                raise UnavailableError(
                    f"{where} has no model {self.model!r} ({exc.error}): run "
                    f"`ollama pull {self.model}` there, or create it from a GGUF with "
                    f"`ollama create {self.model} -f Modelfile`, or set KG_LLM__MODEL"
                ) from exc
            if exc.status_code in _UNAVAILABLE_STATUS:
                raise UnavailableError(
                    f"{where} is busy or restarting (HTTP {exc.status_code}: {exc.error})"
                ) from exc
            raise BackendError(
                f"{where} failed with model {self.model!r}: {exc.error}"
                + (f" (HTTP {exc.status_code})" if exc.status_code > 0 else "")
            ) from exc
        if isinstance(exc, RequestError):
            raise BackendError(f"the request to {where} was refused: {exc.error}") from exc
        raise BackendError(f"{where} failed: {type(exc).__name__}: {exc}") from exc


async def _close_stream(responses: AsyncIterator[ChatResponse]) -> None:
    """Close the HTTP stream behind the client's generator (early exit or error)."""
    close = getattr(responses, "aclose", None)
    if close is not None:
        try:
            await close()
        except _DRIVER_ERRORS:  # the stream's own failure was already reported
            return
