"""Browser origins: the allow-list's checks, CORS answers of a Starlette app carrying
``cors_middleware`` (over ASGI), and the WebSocket handshake guard driven with ASGI
messages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.domain.errors import ConfigurationError
from app.security.cors import (
    POLICY_VIOLATION,
    CorsSettings,
    WebSocketOriginGuard,
    cors_middleware,
    normalise_origin,
    same_origin,
)

APP_ORIGIN = "https://app.example.com"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.COM:443", "https://app.example.com"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("http://example.com:80", "http://example.com"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("*", "*"),
    ],
)
def test_origins_are_normalised(given: str, expected: str) -> None:
    assert normalise_origin(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "ftp://app.example.com",
        "https://user:pw@app.example.com",
        "https://app.example.com:99999",
        "https://",
    ],
)
def test_what_is_not_an_origin_stops_start_up(given: str) -> None:
    with pytest.raises(ConfigurationError, match="origin"):
        normalise_origin(given)


def test_settings_refuse_what_would_open_the_api_to_every_site() -> None:
    with pytest.raises(ConfigurationError, match="'\\*' would let every site"):
        CorsSettings(allowed_origins=("*",), allow_credentials=True)
    with pytest.raises(ConfigurationError, match="'null' origin"):
        CorsSettings(allowed_origins=("null",))
    with pytest.raises(ConfigurationError, match="not one string"):
        CorsSettings(allowed_origins="https://a.example")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_age"):
        CorsSettings(max_age=-1)


def test_settings_keep_each_origin_once_in_its_normal_form() -> None:
    settings = CorsSettings(allowed_origins=(APP_ORIGIN, "HTTPS://APP.example.com:443"))
    assert settings.allowed_origins == (APP_ORIGIN,)
    assert settings.allows("https://app.example.com:443")
    assert not settings.allows("https://evil.example.com")
    assert not settings.allows("null") and not settings.allows("")
    assert CorsSettings(allowed_origins=("*",)).allows("https://anyone.example")
    assert not CorsSettings().allows(APP_ORIGIN)


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", True),
        ("https://kg.example.com", "kg.example.com", True),
        ("https://kg.example.com", "kg.example.com:443", True),
        ("http://kg.example.com", "kg.example.com:443", False),
        ("http://localhost:8000", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", False),
        ("http://[::1]:8000", "[::1]:8000", True),
        ("null", "127.0.0.1:8000", False),
        ("http://127.0.0.1:8000", "", False),
        ("http://127.0.0.1:8000", "127.0.0.1:bad", False),
    ],
)
def test_same_origin_is_host_and_port_of_the_host_header(
    origin: str, host: str, same: bool
) -> None:
    assert same_origin(origin, host) is same


# --- CORS over HTTP -----------------------------------------------------------------


def _app(settings: CorsSettings) -> Starlette:
    async def graphql(request: Request) -> Response:
        return JSONResponse({"data": {}}, headers={"Retry-After": "3"})

    routes = [Route("/graphql", graphql, methods=["GET", "POST"])]
    return Starlette(routes=routes, middleware=cors_middleware(settings))


async def _request(app: Starlette, method: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kg.example.com") as c:
        return await c.request(method, "/graphql", headers=headers)


PREFLIGHT = {
    "origin": APP_ORIGIN,
    "access-control-request-method": "POST",
    "access-control-request-headers": "authorization, content-type",
}


async def test_without_origins_no_other_site_gets_an_answer() -> None:
    app = _app(CorsSettings())
    assert [getattr(m.cls, "__name__", None) for m in cors_middleware(CorsSettings())] == [
        "WebSocketOriginGuard"
    ]
    preflight = await _request(app, "OPTIONS", PREFLIGHT)
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers
    simple = await _request(app, "GET", {"origin": APP_ORIGIN})
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers


async def test_a_listed_origin_may_post_with_credentials_headers_and_read_retry_after() -> None:
    app = _app(CorsSettings(allowed_origins=(APP_ORIGIN,)))
    preflight = await _request(app, "OPTIONS", PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert set(preflight.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "x-api-key" in allowed
    assert "access-control-allow-credentials" not in preflight.headers
    simple = await _request(app, "GET", {"origin": APP_ORIGIN})
    assert simple.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "retry-after" in exposed and "x-request-id" in exposed


async def test_an_unlisted_origin_is_refused_its_preflight() -> None:
    app = _app(CorsSettings(allowed_origins=(APP_ORIGIN,)))
    preflight = await _request(app, "OPTIONS", {**PREFLIGHT, "origin": "https://evil.example"})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = await _request(app, "GET", {"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_credentials_are_allowed_only_when_asked_for() -> None:
    app = _app(CorsSettings(allowed_origins=(APP_ORIGIN,), allow_credentials=True))
    simple = await _request(app, "GET", {"origin": APP_ORIGIN})
    assert simple.headers["access-control-allow-credentials"] == "true"
    assert simple.headers["access-control-allow-origin"] == APP_ORIGIN


# --- WebSocket handshakes -----------------------------------------------------------


async def _handshake(settings: CorsSettings, headers: dict[str, str]) -> tuple[bool, list[Any]]:
    """Whether the guarded app was reached, and what the guard sent."""
    reached: list[bool] = []
    sent: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/graphql",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    await WebSocketOriginGuard(inner, settings)(scope, receive, send)
    return bool(reached), sent


@pytest.mark.parametrize(
    ("headers", "settings"),
    [
        ({"host": "127.0.0.1:8000"}, CorsSettings()),  # a script: no Origin
        ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}, CorsSettings()),
        (
            {"host": "kg.example.com", "origin": APP_ORIGIN},
            CorsSettings(allowed_origins=(APP_ORIGIN,)),
        ),
        ({"host": "kg.example.com", "origin": APP_ORIGIN}, CorsSettings(allowed_origins=("*",))),
    ],
)
async def test_websockets_from_the_server_listed_origins_and_scripts_pass(
    headers: dict[str, str], settings: CorsSettings
) -> None:
    assert await _handshake(settings, headers) == (True, [])


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://localhost:8000", "null", "http://127.0.0.1:8001"]
)
async def test_websockets_from_other_pages_are_refused_before_accept(origin: str) -> None:
    reached, sent = await _handshake(
        CorsSettings(allowed_origins=(APP_ORIGIN,)), {"host": "127.0.0.1:8000", "origin": origin}
    )
    assert not reached
    assert sent == [{"type": "websocket.close", "code": POLICY_VIOLATION, "reason": ""}]


async def test_http_requests_pass_the_websocket_guard_untouched() -> None:
    reached: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["type"])

    async def nothing() -> dict[str, Any]:
        raise AssertionError("the guard must not read an HTTP request")

    async def ignore(message: Any) -> None:
        raise AssertionError("the guard must not answer an HTTP request")

    scope = {"type": "http", "headers": [(b"origin", b"https://evil.example")]}
    await WebSocketOriginGuard(inner, CorsSettings())(scope, nothing, ignore)
    assert reached == ["http"]
