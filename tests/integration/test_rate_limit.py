"""Rate limits through the real Starlette app over ASGI: the app as ``create_app``
builds it, but its schema carries the rate-limit extension and its context says who
calls (a test-local context: the principal from an ``x-test-subject`` header, the
client address from the connection). Authentication itself is not under test here.

Buckets are small and refill slowly (0.01 token/s), so nothing refills during a test.
Admitted questions and ingestions are empty ones, which their resolvers refuse with
BAD_USER_INPUT: that proves the request got past the limits without loading a model.
Refusals are 429 with ``Retry-After`` and a RATE_LIMITED GraphQL error; over a
WebSocket the refusal comes at subscribe time, as the operation's error message.

Sharing between processes runs two apps on one Redis (``KG_TEST_REDIS_URL``; skipped,
saying why, without it), under a key prefix of their own, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import redis.asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from app import server
from app.adapters.memory_rate_limiter import MemoryRateLimiter
from app.adapters.redis_rate_limiter import RedisRateLimiter
from app.config import load_settings
from app.container import Container, build_container
from app.domain.auth import Principal, Role
from app.ports.rate_limiter import Bucket, RateLimiter
from app.security.rate_limits import RateLimits, RateLimitSettings
from graphql_schema.context import Context
from graphql_schema.rate_limit import rate_limits
from graphql_schema.schema import KGSchema, build_schema
from tests.support.graphql_client import subscription
from tests.support.live_server import free_port
from tests.support.redis_keys import delete_keys

SLOW = 0.01
POLICY = RateLimitSettings(
    general=Bucket(SLOW, 6), ask=Bucket(SLOW, 2), ingest=Bucket(SLOW, 2), fail_open=False
)

ASK = '{ ask(question: "") { answer } }'
STATS = "{ stats { documents } }"
INGEST = 'mutation { ingestDocument(input: {title: "", text: ""}) { id } }'
ASK_STREAM = 'subscription { askStream(question: "") { delta } }'


@dataclasses.dataclass
class CallerContext(Context):
    """The production context, sure to hold Strawberry's HTTP sub-response."""

    response: Response | None = None


class CallerGraphQL(server.KGGraphQL):
    """The production context, its principal replaced by a token's when the request
    names a subject (local mode makes every caller the same local admin)."""

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        base = await super().get_context(request, response)
        given: dict[str, Any] = {
            f.name: getattr(base, f.name) for f in dataclasses.fields(base) if f.init
        }
        if subject := request.headers.get("x-test-subject"):
            given["principal"] = Principal(subject, frozenset({Role.WRITER}), "token")
        given["response"] = response if isinstance(response, Response) else None
        return CallerContext(**given)


def limited_app(container: Container, limits: RateLimits) -> Starlette:
    """``create_app`` with the rate-limited schema and the caller-aware context."""

    def schema(*args: object, **kwargs: object) -> KGSchema:
        return build_schema(extensions=[rate_limits(limits)])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server, "build_schema", schema)
        patch.setattr(server, "KGGraphQL", CallerGraphQL)
        return server.create_app(container.settings, container)


@pytest.fixture
async def container(tmp_path: Path) -> AsyncIterator[Container]:
    built = build_container(load_settings(data_dir=tmp_path))
    await built.graph.start()  # only the graph store (stats): no models load
    try:
        yield built
    finally:
        await built.graph.close()


@pytest.fixture
async def app(container: Container) -> AsyncIterator[Starlette]:
    limiter = MemoryRateLimiter()
    await limiter.start()
    try:
        yield limited_app(container, RateLimits(limiter, POLICY))
    finally:
        await limiter.close()


async def call(
    app: Starlette,
    query: str,
    address: str = "203.0.113.7",
    subject: str | None = None,
    method: str = "POST",
) -> tuple[httpx.Response, dict[str, Any]]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    headers = {"x-test-subject": subject} if subject else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        if method == "GET":
            response = await client.get("/graphql", params={"query": query}, headers=headers)
        else:
            response = await client.post("/graphql", json={"query": query}, headers=headers)
    return response, response.json()


def codes(body: dict[str, Any]) -> list[str]:
    return [str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []]


def admitted(response: httpx.Response, body: dict[str, Any]) -> bool:
    """Past the limits: a 200 without RATE_LIMITED (empty questions are BAD_USER_INPUT)."""
    return response.status_code == 200 and "RATE_LIMITED" not in codes(body)


def refused(response: httpx.Response, body: dict[str, Any], limit: str) -> bool:
    """429, Retry-After in whole seconds, one RATE_LIMITED error naming the bucket."""
    if response.status_code != 429 or codes(body) != ["RATE_LIMITED"]:
        return False
    extensions = body["errors"][0]["extensions"]
    retry_after = int(response.headers["retry-after"])
    return (
        body.get("data") is None
        and extensions["limit"] == limit
        and extensions["retryable"] is True
        and retry_after >= 1
        and retry_after - 1 < extensions["retryAfter"] <= retry_after
    )


async def test_ask_runs_out_before_general(app: Starlette) -> None:
    for _ in range(2):
        response, body = await call(app, ASK)
        assert admitted(response, body) and codes(body) == ["BAD_USER_INPUT"], body
    response, body = await call(app, ASK)
    assert refused(response, body, "ask"), (response.status_code, response.headers, body)
    assert int(response.headers["retry-after"]) == 100  # one token at 0.01/s
    assert response.headers["x-request-id"]  # the app's own middleware still answered
    # general still has 3 of its 6 tokens (the refused ask paid one)
    for _ in range(3):
        response, body = await call(app, STATS)
        assert response.status_code == 200 and body == {"data": {"stats": {"documents": 0}}}
        assert "retry-after" not in response.headers
    response, body = await call(app, STATS, method="GET")
    assert refused(response, body, "general"), body


async def test_client_addresses_have_their_own_buckets(app: Starlette) -> None:
    for _ in range(2):
        assert admitted(*await call(app, ASK, address="198.51.100.1"))
    assert refused(*await call(app, ASK, address="198.51.100.1"), "ask")
    assert refused(*await call(app, ASK, address="::ffff:198.51.100.1"), "ask")
    assert admitted(*await call(app, ASK, address="198.51.100.2"))
    # IPv6 counts per /64: another host of the same /64 is the same client
    for _ in range(2):
        assert admitted(*await call(app, ASK, address="2001:db8:0:7::1"))
    assert refused(*await call(app, ASK, address="2001:db8:0:7::2"), "ask")
    assert admitted(*await call(app, ASK, address="2001:db8:0:8::1"))


async def test_a_principal_is_limited_wherever_it_calls_from(app: Starlette) -> None:
    assert admitted(*await call(app, ASK, address="192.0.2.1", subject="alice"))
    assert admitted(*await call(app, ASK, address="192.0.2.2", subject="alice"))
    response, body = await call(app, ASK, address="192.0.2.3", subject="alice")
    assert refused(response, body, "ask")
    assert "from this client" in body["errors"][0]["message"]
    assert admitted(*await call(app, ASK, address="192.0.2.3", subject="bob"))


async def test_ingestion_has_its_own_bucket(app: Starlette) -> None:
    for _ in range(2):
        response, body = await call(app, INGEST)
        assert admitted(response, body) and codes(body) == ["BAD_USER_INPUT"], body
    assert refused(*await call(app, INGEST), "ingest")
    assert admitted(*await call(app, ASK))  # questions are counted apart


async def test_an_operation_that_never_fits_is_bad_input_and_still_pays(app: Starlette) -> None:
    three = "{ " + " ".join(f'a{i}: ask(question: "") {{ answer }}' for i in range(3)) + " }"
    response, body = await call(app, three)
    assert response.status_code == 200 and codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"] == (
        "an operation may hold at most 2 questions (ask, askStream); this one holds 3"
    )
    for _ in range(5):  # 6 general tokens, one paid by the refused operation
        assert admitted(*await call(app, STATS))
    assert refused(*await call(app, STATS), "general")


async def test_invalid_documents_pay_their_general_token(app: Starlette) -> None:
    for _ in range(6):
        response, body = await call(app, "{ noSuchField }")
        assert response.status_code == 200 and codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert refused(*await call(app, "{ noSuchField }"), "general")


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """The app behind a real uvicorn on a free loopback port, on this event loop, without
    its lifespan (no models load); yields the WebSocket URL of /graphql."""
    config = uvicorn.Config(  # no log_config or log_level: they would reconfigure the
        # process's uvicorn loggers for every later test (ours route them, see app.observability)
        app,
        host="127.0.0.1",
        port=free_port(),
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    try:
        while not served.started:
            assert not task.done(), "uvicorn stopped before it started"
            await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{config.port}/graphql"
    finally:
        served.should_exit = True
        await task


async def test_a_subscription_is_limited_when_it_subscribes(app: Starlette) -> None:
    async with serving(app) as url:
        for _ in range(2):  # admitted: the empty question fails in the resolver
            async with subscription(url, ASK_STREAM) as messages:
                payloads = [p async for p in messages]
            assert [codes(p) for p in payloads] == [["BAD_USER_INPUT"]], payloads
        async with subscription(url, ASK_STREAM) as messages:
            payloads = [p async for p in messages]
        [[error]] = [p["errors"] for p in payloads]  # the "error" message: refused at subscribe
        assert error["extensions"]["code"] == "RATE_LIMITED", error
        assert error["extensions"]["limit"] == "ask"
        assert error["extensions"]["retryAfter"] == pytest.approx(100, abs=1)
        # the legacy protocol is refused the same way, and other operations still pass
        async with subscription(url, ASK_STREAM, protocol="graphql-ws") as messages:
            payloads = [p async for p in messages]
        [legacy] = [p["errors"] for p in payloads]  # graphql-ws sends one error, not a list
        assert legacy["extensions"]["code"] == "RATE_LIMITED", legacy
        async with subscription(url, "subscription { ingestionEvents { jobId } }") as messages:
            with pytest.raises(TimeoutError):  # admitted: open, with nothing to say yet
                await asyncio.wait_for(anext(messages), 0.3)


async def test_a_context_without_its_caller_is_an_internal_error() -> None:
    limiter = MemoryRateLimiter()
    await limiter.start()
    schema = build_schema(extensions=[rate_limits(RateLimits(limiter, POLICY))])
    result = await schema.execute(STATS, context_value=SimpleNamespace(request_id="r"))
    assert result.data is None and result.errors
    assert [e.extensions for e in result.errors] == [{"code": "INTERNAL_SERVER_ERROR"}]
    assert len(limiter) == 0  # nothing taken


async def test_a_store_that_goes_away_refuses_when_failing_closed(container: Container) -> None:
    limiter = MemoryRateLimiter()  # never started: every take is UNAVAILABLE
    app = limited_app(container, RateLimits(limiter, POLICY))
    response, body = await call(app, STATS)
    assert response.status_code == 200 and codes(body) == ["UNAVAILABLE"]
    assert body["errors"][0]["extensions"]["retryable"] is True
    open_app = limited_app(
        container, RateLimits(limiter, dataclasses.replace(POLICY, fail_open=True))
    )
    response, body = await call(open_app, STATS)
    assert body == {"data": {"stats": {"documents": 0}}}


# --- Redis: buckets shared by processes ---------------------------------------------


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("KG_TEST_REDIS_URL")
    if not url:
        pytest.skip("KG_TEST_REDIS_URL is not set: no Redis server to share rate limits on")
    return url


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    prefix = f"kgtest-rl-{uuid.uuid4().hex[:12]}:"
    yield prefix
    await delete_keys(redis_url, f"{prefix}*")


async def test_two_app_processes_share_buckets_in_redis(
    container: Container, redis_url: str, redis_prefix: str
) -> None:
    limiters: list[RateLimiter] = [RedisRateLimiter(redis_url, prefix=redis_prefix) for _ in "ab"]
    for limiter in limiters:
        await limiter.start()
    try:
        first, second = (limited_app(container, RateLimits(lim, POLICY)) for lim in limiters)
        assert admitted(*await call(first, ASK, address="203.0.113.77"))
        assert admitted(*await call(second, ASK, address="203.0.113.77"))
        response, body = await call(first, ASK, address="203.0.113.77")
        assert refused(response, body, "ask"), body
        assert refused(*await call(second, ASK, address="203.0.113.77"), "ask")
        assert admitted(*await call(second, ASK, address="203.0.113.78"))
        client = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
        try:
            keys = sorted([k async for k in client.scan_iter(match=f"{redis_prefix}*")])
        finally:
            await client.aclose()
        assert keys == [
            f"{redis_prefix}{limit}:addr:203.0.113.{n}"
            for limit in ("ask", "general")
            for n in (77, 78)
        ]
    finally:
        for limiter in limiters:
            await limiter.close()
