"""Strawberry's GraphiQL page, served with its assets from this server instead of a CDN.

Strawberry's ``graphiql.html`` loads React, GraphiQL, the explorer plugin and their CSS
from unpkg, which a server behind a firewall cannot reach. ``make assets``
(ops/graphiql/build.py) installs the same npm packages at the same versions and copies
the files to ``app/static/graphiql/<pkg>@<version>/<path>`` with a manifest of their
sha384 hashes. This module rewrites each CDN URL of the page to
``/graphiql/static/<pkg>@<version>/<path>`` and each ``integrity`` attribute to the
manifest's hash, so the browser still checks every file (SRI), and serves the files.

Plug it into the GraphQL view::

    class GraphQL(strawberry.asgi.GraphQL):
        async def render_graphql_ide(self, request: Request) -> Response:
            return HTMLResponse(offline_graphiql_html())

and add ``graphiql_routes()`` to the Starlette app's routes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

from app.domain.errors import ConfigurationError

ASSETS_DIR = Path(__file__).resolve().parent / "static" / "graphiql"
MANIFEST_NAME = "manifest.json"
STATIC_PREFIX = "/graphiql/static"
_BUILD_HINT = "run `make assets` to build the GraphiQL assets"

# A CDN URL naming an npm file: unpkg.com/<pkg>@<ver>/<path> or jsdelivr's /npm/ form.
_CDN_URL = re.compile(
    r"https?://(?:unpkg\.com|cdn\.jsdelivr\.net/npm)/"
    r"(?P<key>(?:@[\w.-]+/)?[\w.-]+@[\w.+-]+/[^\s\"'<>?#]+)"
)
_CDN_HOST = re.compile(r"https?://(?:unpkg\.com|cdn\.jsdelivr\.net)\b")
# Quoted values may hold ">" (the favicon's inline SVG does), so tags are matched by parts.
_TAG = re.compile(r"""<(?:script|link)\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
_URL_ATTR = re.compile(
    r"""(?<![\w-])(?:src|href)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""", re.IGNORECASE
)
_INTEGRITY_ATTR = re.compile(r"""(?<![\w-])integrity\s*=\s*(?:"[^"]*"|'[^']*')""", re.IGNORECASE)
_SUBSCRIPTION_URL_ARG = re.compile(r"^[ \t]*subscriptionUrl,[ \t]*\n", re.MULTILINE)
_SUBSCRIPTION_PLACEHOLDER = "{{ SUBSCRIPTION_ENABLED }}"  # older strawberry templates


@dataclass(frozen=True, slots=True)
class Manifest:
    """The built assets: file key (``pkg@ver/path``) -> SRI hash (``sha384-...``)."""

    directory: Path
    integrity: dict[str, str]


def sri_sha384(data: bytes) -> str:
    """The Subresource Integrity string a browser checks: ``sha384-<base64>``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii")


def load_manifest(directory: Path = ASSETS_DIR, *, verify: bool = True) -> Manifest:
    """Read the manifest; with ``verify``, check every file against its hash.

    A file the browser would reject (missing or changed since the build) fails here, at
    start-up, rather than as a blank page.
    """
    path = directory / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        integrity = {key: str(entry["integrity"]) for key, entry in raw["files"].items()}
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f"GraphiQL assets are missing ({path} not found): {_BUILD_HINT}"
        ) from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"GraphiQL manifest {path} is unreadable: {_BUILD_HINT}") from exc
    if verify:
        for key, expected in integrity.items():
            file = directory / key
            try:
                actual = sri_sha384(file.read_bytes())
            except OSError as exc:
                raise ConfigurationError(
                    f"GraphiQL asset {file} is missing: {_BUILD_HINT}"
                ) from exc
            if actual != expected:
                raise ConfigurationError(
                    f"GraphiQL asset {file} does not match its manifest hash: {_BUILD_HINT}"
                )
    return Manifest(directory=directory, integrity=integrity)


def _local_key(url: str, manifest: Manifest) -> str | None:
    """The manifest key a CDN URL names, None for a non-CDN URL; unknown files fail."""
    match = _CDN_URL.fullmatch(url)
    if match is None:
        if _CDN_HOST.match(url):
            raise ConfigurationError(f"GraphiQL page loads {url}, which names no npm file")
        return None
    key = match["key"]
    if key not in manifest.integrity:
        raise ConfigurationError(
            f"GraphiQL page loads {url}, which the built assets lack: pin its package in "
            f"ops/graphiql/package.json, list the file in ops/graphiql/build.py and "
            f"{_BUILD_HINT}"
        )
    return key


def _rewrite_tag(tag: str, manifest: Manifest, static_prefix: str) -> str:
    """One <script>/<link>: CDN URL -> local path, integrity -> the manifest's hash."""
    attr = _URL_ATTR.search(tag)
    if attr is None:
        return tag
    group = "dq" if attr["dq"] is not None else "sq"
    key = _local_key(attr[group], manifest)
    if key is None:
        return tag
    start, end = attr.span(group)
    tag = f"{tag[:start]}{static_prefix}/{key}{tag[end:]}"
    integrity = f'integrity="{manifest.integrity[key]}"'
    if _INTEGRITY_ATTR.search(tag):
        return _INTEGRITY_ATTR.sub(lambda _: integrity, tag, count=1)
    closing = -2 if tag.endswith("/>") else -1
    return f"{tag[:closing].rstrip()} {integrity}{tag[closing:]}"


def _set_subscriptions(html: str, enabled: bool) -> str:
    """Keep or drop the page's WebSocket subscription URL."""
    if _SUBSCRIPTION_PLACEHOLDER in html:
        return html.replace(_SUBSCRIPTION_PLACEHOLDER, "true" if enabled else "false")
    if enabled:
        return html
    html, count = _SUBSCRIPTION_URL_ARG.subn("", html, count=1)
    if count == 0:
        raise ConfigurationError(
            "cannot disable subscriptions in strawberry's GraphiQL page: "
            "its template no longer passes subscriptionUrl to createFetcher"
        )
    return html


# GraphiQL sends its headers editor (kept in localStorage) with HTTP requests only; a
# server that enforces authentication reads a WebSocket's credentials from
# connection_init, so the same headers go there (read when the socket opens).
_WS_CONNECTION_PARAMS = """\
        wsConnectionParams: () => {
          try {
            return JSON.parse(localStorage.getItem("graphiql:headers") || "{}") || {};
          } catch (error) {
            return {};
          }
        },
"""


def _send_headers_on_websocket(html: str) -> str:
    html, count = _SUBSCRIPTION_URL_ARG.subn(lambda m: m[0] + _WS_CONNECTION_PARAMS, html, count=1)
    if count == 0:
        raise ConfigurationError(
            "cannot pass GraphiQL's headers to its WebSocket: strawberry's page template "
            "no longer passes subscriptionUrl to createFetcher"
        )
    return html


def render_graphiql(
    template: str,
    manifest: Manifest,
    *,
    static_prefix: str = STATIC_PREFIX,
    subscription_enabled: bool = True,
) -> str:
    """The page with every CDN asset served from ``static_prefix`` and checked by SRI.

    Fails with ConfigurationError when a CDN URL is left that could not be mapped, so a
    strawberry upgrade that adds an asset is caught instead of quietly going online.
    """
    html = _TAG.sub(lambda m: _rewrite_tag(m[0], manifest, static_prefix), template)
    leftover = _CDN_HOST.search(html)
    if leftover is not None:
        snippet = html[leftover.start() : leftover.start() + 80].splitlines()[0]
        raise ConfigurationError(f"GraphiQL page still loads from a CDN: {snippet}")
    return _set_subscriptions(html, subscription_enabled)


def build_offline_page(directory: Path = ASSETS_DIR, *, subscription_enabled: bool = True) -> str:
    """Strawberry's GraphiQL template rewritten against the assets in ``directory``,
    its WebSocket opened with the headers editor's credentials."""
    html = render_graphiql(
        get_graphql_ide_html(graphql_ide="graphiql"),
        load_manifest(directory),
        subscription_enabled=subscription_enabled,
    )
    return _send_headers_on_websocket(html) if subscription_enabled else html


@lru_cache(maxsize=2)
def offline_graphiql_html(subscription_enabled: bool = True) -> str:
    """The offline page for the built assets; built once, then served from memory."""
    return build_offline_page(ASSETS_DIR, subscription_enabled=subscription_enabled)


def graphiql_routes(directory: Path = ASSETS_DIR) -> list[BaseRoute]:
    """The route serving the assets under ``STATIC_PREFIX``; needs the built assets."""
    if not (directory / MANIFEST_NAME).is_file():
        raise ConfigurationError(f"GraphiQL assets are missing in {directory}: {_BUILD_HINT}")
    return [
        Mount(STATIC_PREFIX, app=StaticFiles(directory=directory), name="graphiql-static"),
    ]
