"""In local mode, only requests addressed to a loopback name are served.

Local mode grants admin to whoever reaches the server, on the grounds that only this
machine can. A web page can defeat that with DNS rebinding: its own name is made to
resolve to 127.0.0.1, so the browser sends the page's requests (same origin, so no CORS
check applies) to this server. Those requests still carry the page's name in ``Host``,
so refusing any ``Host`` that is not a loopback name or address closes the hole.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.security.auth_setup import is_loopback


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port; IPv6 literals keep no brackets."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    name, _, port = header.rpartition(":")
    return name if name and port.isdigit() else header


def is_loopback_host(header: str) -> bool:
    """Whether a ``Host`` header names this machine: a loopback name or address, or a
    ``.localhost`` name (which browsers resolve to loopback themselves, RFC 6761)."""
    name = host_name(header).rstrip(".")
    return is_loopback(name) or name.endswith(".localhost")


class LoopbackHostsOnly:
    """ASGI middleware: 421 Misdirected Request for HTTP, a refused handshake for
    WebSockets, when the ``Host`` header is not a loopback name."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if is_loopback_host(host):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(
            {
                "errors": [
                    {
                        "message": "this server runs in local mode and answers only requests "
                        "addressed to localhost or a loopback address",
                        "extensions": {"code": "FORBIDDEN"},
                    }
                ]
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 421,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
