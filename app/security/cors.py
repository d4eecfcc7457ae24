"""Which web origins may use the API from a browser: CORS for HTTP, and the same
allow-list for WebSocket handshakes, which CORS does not cover.

By default no origin is listed: pages served by the server itself (GraphiQL) work, and
a page from anywhere else cannot read a response (no CORS headers) nor send a JSON POST
(its preflight gets no approval). Listed origins get CORS over Starlette's
``CORSMiddleware``: GET and POST, the headers our clients send (``Authorization``,
``X-API-Key``, ``Content-Type``, ``X-Request-ID``), and ``Retry-After`` and
``X-Request-ID`` exposed so that a page can read them.

Credentials in the CORS sense are cookies and HTTP authentication, which this API does
not use (tokens and keys travel in headers a page sets itself), so
``allow_credentials`` stays off unless asked for; ``*`` with credentials is refused,
since Starlette would then echo any origin and let every site act with the user's
cookies. The ``null`` origin (sandboxed frames, ``file:`` pages) is refused too.

Browsers open WebSockets to any site without asking anybody, sending the page's
``Origin``; without a check, any page a developer visits could subscribe to, query and
mutate a server running in local mode on their machine (cross-site WebSocket hijacking).
``WebSocketOriginGuard`` refuses a handshake whose ``Origin`` is neither the server's own
(same host and port as the ``Host`` header) nor listed; clients that send no ``Origin``
(scripts, the CLI) are not browsers and pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.domain.errors import ConfigurationError

log = structlog.get_logger(__name__)

DEFAULT_HEADERS = ("authorization", "content-type", "x-api-key", "x-request-id")
EXPOSED_HEADERS = ("retry-after", "x-request-id")
POLICY_VIOLATION = 1008  # WebSocket close code; before accept the server answers 403
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, default port dropped; ConfigurationError
    for anything else (a path or trailing slash would never match a browser's Origin)."""
    if origin == "*":
        return origin
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"a CORS origin must be http(s)://host[:port], got {origin!r}")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"a CORS origin is scheme://host[:port] with nothing after it, got {origin!r}"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(f"a CORS origin has a bad port: {origin!r}") from exc
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class CorsSettings:
    """``allowed_origins``: exact origins (``https://app.example.com``), or ``*`` for any
    (never with ``allow_credentials``). Empty: same-origin only."""

    allowed_origins: tuple[str, ...] = ()
    allow_credentials: bool = False
    allowed_headers: tuple[str, ...] = DEFAULT_HEADERS
    max_age: int = 600

    def __post_init__(self) -> None:
        if isinstance(self.allowed_origins, str):
            raise ConfigurationError("allowed_origins is a list of origins, not one string")
        if "null" in self.allowed_origins:
            raise ConfigurationError(
                "the 'null' origin cannot be allowed: any sandboxed page has it"
            )
        if self.allow_credentials and "*" in self.allowed_origins:
            raise ConfigurationError(
                "CORS with credentials needs a list of origins: '*' would let every site "
                "send the user's cookies"
            )
        if self.max_age < 0:
            raise ConfigurationError(f"max_age must be >= 0, got {self.max_age}")
        origins = tuple(dict.fromkeys(normalise_origin(o) for o in self.allowed_origins))
        object.__setattr__(self, "allowed_origins", origins)

    def allows(self, origin: str) -> bool:
        """Whether a page from ``origin`` is listed (not counting same-origin)."""
        if "*" in self.allowed_origins:
            return True
        try:
            return normalise_origin(origin) in self.allowed_origins
        except ConfigurationError:
            return False


def cors_middleware(settings: CorsSettings) -> list[Middleware]:
    """The middleware for ``Starlette(middleware=...)``: CORS when origins are listed,
    and the WebSocket Origin check always."""
    chosen: list[Middleware] = []
    if settings.allowed_origins:
        chosen.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.allowed_origins),
                allow_methods=["GET", "POST"],
                allow_headers=list(settings.allowed_headers),
                allow_credentials=settings.allow_credentials,
                expose_headers=list(EXPOSED_HEADERS),
                max_age=settings.max_age,
            )
        )
    chosen.append(Middleware(WebSocketOriginGuard, settings=settings))
    return chosen


def same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` names the host and port of the ``Host`` header ``host``."""
    parts = urlsplit(origin)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return False
    served = urlsplit(f"{scheme}://{host}")
    try:
        origin_port = parts.port or _DEFAULT_PORTS[scheme]
        host_port = served.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        return False
    return parts.hostname == served.hostname and origin_port == host_port


class WebSocketOriginGuard:
    """Refuses WebSocket handshakes from pages of other, unlisted origins."""

    def __init__(self, app: ASGIApp, settings: CorsSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not self._admitted(Headers(scope=scope)):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": ""})
            return
        await self.app(scope, receive, send)

    def _admitted(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is None:
            return True
        if same_origin(origin, headers.get("host", "")) or self.settings.allows(origin):
            return True
        log.info("websocket.origin_refused", origin=origin[:200])
        return False
