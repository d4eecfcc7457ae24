"""Minimal GraphQL clients for tests: HTTP, and both WebSocket subscription protocols."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import websockets


async def gql(
    client: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The whole response body (data and errors)."""
    # json.dumps escapes non-ASCII, so even a lone surrogate reaches the server as a
    # JSON escape (what a buggy client would send), not as a client-side encoding error.
    content = json.dumps({"query": query, "variables": variables or {}})
    response = await client.post(url, content=content, headers={"content-type": "application/json"})
    body: dict[str, Any] = response.json()
    body["_status"] = response.status_code
    return body


def data_of(body: dict[str, Any]) -> dict[str, Any]:
    assert not body.get("errors"), body.get("errors")
    data: dict[str, Any] = body["data"]
    return data


def error_codes(body: dict[str, Any]) -> list[str]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


@asynccontextmanager
async def subscription(
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    protocol: str = "graphql-transport-ws",
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """Open a subscription; yields an iterator of ``payload`` dicts, ending on complete."""
    async with websockets.connect(url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "connection_ack":
                break
            assert msg["type"] == "ka", msg
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        payload = {"query": query, "variables": variables or {}}
        await ws.send(json.dumps({"id": "1", "type": start, "payload": payload}))

        async def messages() -> AsyncIterator[dict[str, Any]]:
            data_type = "next" if protocol == "graphql-transport-ws" else "data"
            while True:
                msg = json.loads(await ws.recv())
                if msg["type"] == "complete":
                    return
                if msg["type"] in ("ka", "ping", "pong"):
                    continue
                if msg["type"] == "error":
                    yield {"errors": msg["payload"]}
                    return
                assert msg["type"] == data_type, msg
                yield msg["payload"]

        yield messages()
