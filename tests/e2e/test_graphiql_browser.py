"""GraphiQL in a real headless Chromium, served entirely by our own server.

A person opens /graphql, types a query, runs it and reads the answer; the page must load
every asset from our server (nothing from a CDN) and the browser must accept each file's
SRI hash (a mismatch shows up as a console error and a blank page). A subscription run
from the page streams its answer over GraphiQL's WebSocket.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import (
    ConsoleMessage,
    Request,
    Response,
    WebSocket,
    async_playwright,
    expect,
)

from app.graphiql_page import STATIC_PREFIX, load_manifest
from tests.e2e.test_ingestion_journey import INGEST, wait_job
from tests.support.graphql_client import data_of, gql
from tests.support.live_server import LiveServer, kg_env, live_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/graphiql.png")
ASK_SCREENSHOT = Path("/tmp/graphiql-ask.png")
HOLLOWMERE = (
    "Hollowmere is a glassworks in the Vosges. It was founded by Odile Varenne in 1887 "
    "and still makes lenses for lighthouses."
)
ASK_STREAM_DOCUMENT = """subscription {
  askStream(question: "Who founded the Hollowmere glassworks?", k: 3) {
    delta done answer { answer citations { quote document { title } } }
  }
}"""
# GraphiQL parses an edit 100 ms after the last change and picks the transport from that
# parse, not from the text it sends: run sooner and it still judges the previous text (the
# welcome comment, no subscription) and POSTs the subscription over HTTP, which the server
# cannot stream. The same handler writes the text to the page's URL (``?q=``), so the URL
# says GraphiQL has taken the edit.
EDIT_TAKEN = "(text) => new URLSearchParams(window.location.search).get('q') === text"


@pytest.fixture(scope="module")
def server_url(server: LiveServer) -> str:
    """The real ``kg serve`` of the end-to-end suite (tests/e2e/conftest.py)."""
    return server.base


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_graphiql_runs_a_query_with_only_local_requests(
    server_url: str, tmp_path: Path
) -> None:
    requests: list[str] = []
    responses: dict[str, int] = {}
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    def on_failed(request: Request) -> None:
        problems.append(f"failed load: {request.url} ({request.failure})")

    def on_response(response: Response) -> None:
        responses[response.url] = response.status

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # empty user data dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 800},
        )
        try:
            context.on("request", lambda request: requests.append(request.url))
            context.on("requestfailed", on_failed)
            context.on("response", on_response)
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

            await page.goto(f"{server_url}/graphql")
            editor = page.locator(".graphiql-query-editor .CodeMirror")
            await expect(editor).to_be_visible(timeout=20_000)
            await expect(page.get_by_label("Show GraphiQL Explorer")).to_be_visible()

            # Type the query as a person would; the editor closes the brace itself.
            await editor.click()
            await page.keyboard.press("Control+A")
            await page.keyboard.press("Backspace")
            await page.keyboard.type("{ stats { documents")
            await page.keyboard.press("Escape")  # close the autocomplete popup
            await expect(editor).to_contain_text("{ stats { documents}}")
            await page.keyboard.press("Control+Enter")

            result = page.locator(".graphiql-response .result-window")
            await expect(result).to_contain_text('"documents":', timeout=20_000)
            await expect(result).to_be_visible()
            await page.screenshot(path=str(SCREENSHOT))
        finally:
            await context.close()

    assert problems == []
    assert requests, "the page made no request"
    server_host = urlsplit(server_url).netloc
    elsewhere = [url for url in requests if urlsplit(url).netloc != server_host]
    assert elsewhere == []
    # Each built asset was fetched from our static route and accepted.
    assets = {f"{server_url}{STATIC_PREFIX}/{key}" for key in load_manifest().integrity}
    assert {url: responses.get(url) for url in assets} == dict.fromkeys(assets, 200)


@dataclass
class Streamed:
    """What GraphiQL's page exchanged while it ran the askStream subscription."""

    sent: list[dict[str, Any]] = field(default_factory=list)  # over its WebSocket
    received: list[dict[str, Any]] = field(default_factory=list)  # the server's replies
    posted: list[str] = field(default_factory=list)  # bodies of its HTTP POSTs


async def ingest_hollowmere(server: LiveServer, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=60, headers=headers) as http:
        job = data_of(
            await gql(
                http,
                server.graphql,
                INGEST,
                {"input": {"title": "Hollowmere", "text": HOLLOWMERE}},
            )
        )["ingestDocument"]
        assert (await wait_job(http, server, job["id"]))["status"] == "COMPLETED"


async def stream_in_graphiql(
    server: LiveServer, profile: Path, stored_headers: dict[str, str] | None = None
) -> Streamed:
    """Paste the askStream subscription into GraphiQL, run it, wait for the cited answer
    and the server's ``complete``. ``stored_headers``: what GraphiQL's headers editor
    holds (its localStorage) when the page opens."""
    streamed = Streamed()
    completed = asyncio.Event()

    def on_reply(frame: str | bytes) -> None:
        streamed.received.append(json.loads(frame))
        if streamed.received[-1]["type"] == "complete":
            completed.set()

    def on_websocket(socket: WebSocket) -> None:
        socket.on("framesent", lambda frame: streamed.sent.append(json.loads(frame)))
        socket.on("framereceived", on_reply)

    def on_request(request: Request) -> None:
        if request.method == "POST":
            streamed.posted.append(request.post_data or "")

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 800},
        )
        try:
            if stored_headers is not None:
                await context.add_init_script(
                    "localStorage.setItem('graphiql:headers', "
                    f"{json.dumps(json.dumps(stored_headers))})"
                )
            page = context.pages[0] if context.pages else await context.new_page()
            page.on("websocket", on_websocket)
            page.on("request", on_request)
            await page.goto(f"{server.base}/graphql")
            editor = page.locator(".graphiql-query-editor .CodeMirror")
            await expect(editor).to_be_visible(timeout=20_000)
            # Set the whole document at once (typing would fight the editor's brackets).
            await page.evaluate(
                "(text) => document.querySelector('.graphiql-query-editor .CodeMirror')"
                ".CodeMirror.setValue(text)",
                ASK_STREAM_DOCUMENT,
            )
            await page.wait_for_function(EDIT_TAKEN, arg=ASK_STREAM_DOCUMENT, timeout=10_000)
            await editor.click()
            await page.keyboard.press("Control+Enter")
            result = page.locator(".graphiql-response .result-window")
            await expect(result).to_contain_text('"done": true', timeout=30_000)
            await expect(result).to_contain_text('"answer": "Odile Varenne"')
            await expect(result).to_contain_text("founded by Odile Varenne in 1887")
            await page.screenshot(path=str(ASK_SCREENSHOT))
            await asyncio.wait_for(completed.wait(), 10)  # the server ends the subscription
        finally:
            await context.close()
    return streamed


def assert_streamed_over_the_websocket(streamed: Streamed) -> None:
    assert [p for p in streamed.posted if "askStream" in p] == []
    subscribe = [m for m in streamed.sent if m["type"] == "subscribe"]
    assert [m["payload"]["query"] for m in subscribe] == [ASK_STREAM_DOCUMENT]
    chunks = [m["payload"]["data"]["askStream"] for m in streamed.received if m["type"] == "next"]
    *deltas, last = chunks
    assert deltas and not any(d["done"] for d in deltas)
    assert last["done"] is True
    assert "".join(d["delta"] for d in deltas) == last["answer"]["answer"] == "Odile Varenne"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_graphiql_streams_a_cited_answer(server: LiveServer, tmp_path: Path) -> None:
    """A person pastes an askStream subscription into GraphiQL and watches the answer
    arrive over the WebSocket (graphql-transport-ws), ending with its citation."""
    await ingest_hollowmere(server, {})
    assert_streamed_over_the_websocket(await stream_in_graphiql(server, tmp_path / "profile"))


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_graphiql_streams_with_the_headers_editor_credential(tmp_path: Path) -> None:
    """On a server that enforces authentication, the API key a person puts in GraphiQL's
    headers editor also opens its WebSocket (connection_init), so subscriptions work."""
    data = tmp_path / "data"
    created = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app.cli", "create-api-key", "--name", "me", "--role", "writer"],
        env=kg_env(data, {"KG_AUTH_REQUIRED": "true"}),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    with live_server(data, {"KG_AUTH_REQUIRED": "true"}) as server:
        await ingest_hollowmere(server, headers)
        streamed = await stream_in_graphiql(server, tmp_path / "profile", headers)
    init = [m for m in streamed.sent if m["type"] == "connection_init"]
    assert [m.get("payload") for m in init] == [headers]
    assert_streamed_over_the_websocket(streamed)
