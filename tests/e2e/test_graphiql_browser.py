"""GraphiQL in a real headless Chromium, served entirely by our own server.

A person opens /graphql, types a query, runs it and reads the answer; the page must load
every asset from our server (nothing from a CDN) and the browser must accept each file's
SRI hash (a mismatch shows up as a console error and a blank page).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import ConsoleMessage, Request, Response, async_playwright, expect

from app.graphiql_page import STATIC_PREFIX, load_manifest
from tests.support.live_server import LiveServer

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
