"""GraphiQL in a real headless Chromium, served entirely by our own server.

A person opens /graphql, types a query, runs it and reads the answer; the page must load
every asset from our server (nothing from a CDN) and the browser must accept each file's
SRI hash (a mismatch shows up as a console error and a blank page).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Request, Response, async_playwright, expect

from app.graphiql_page import STATIC_PREFIX, load_manifest

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
START_TIMEOUT_S = 30.0


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn process serving the tiny GraphiQL app on a free loopback port."""
    build = subprocess.run(
        [sys.executable, str(ROOT / "ops/graphiql/build.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    port = free_loopback_port()
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "tests.e2e.graphiql_app:app"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
                try:
                    if client.get(f"{url}/graphql", headers={"accept": "text/html"}).is_success:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server not up after {START_TIMEOUT_S}s:\n{log_path.read_text()}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


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
            await page.keyboard.type("{ hello")
            await page.keyboard.press("Escape")  # close the autocomplete popup
            await expect(editor).to_contain_text("{ hello}")
            await page.keyboard.press("Control+Enter")

            result = page.locator(".graphiql-response .result-window")
            await expect(result).to_contain_text('"hello": "world"', timeout=20_000)
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
