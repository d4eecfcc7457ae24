"""The offline GraphiQL page: every CDN asset rewritten to our server, SRI kept and true."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from strawberry.http.ides import get_graphql_ide_html

from app.domain.errors import ConfigurationError
from app.graphiql_page import (
    ASSETS_DIR,
    MANIFEST_NAME,
    STATIC_PREFIX,
    Manifest,
    build_offline_page,
    graphiql_routes,
    load_manifest,
    offline_graphiql_html,
    render_graphiql,
    sri_sha384,
)

ROOT = Path(__file__).resolve().parents[2]
ANY_URL = re.compile(r"""https?://[^\s"'<>)]+""")
ASSET_TAG = re.compile(r"""<(?:script|link)\b(?:[^>"']|"[^"]*"|'[^']*')*>""")
ATTR = re.compile(r"""\b(src|href|integrity)="([^"]*)\"""")


@pytest.fixture(scope="module")
def built() -> Manifest:
    """The real assets, built by the same script `make assets` runs (fast when current)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "ops/graphiql/build.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return load_manifest(ASSETS_DIR)


def asset_tags(html: str) -> list[dict[str, str]]:
    """The attributes of every <script src> and <link href> that is not inline data."""
    tags: list[dict[str, str]] = [dict(ATTR.findall(tag)) for tag in ASSET_TAG.findall(html)]
    return [t for t in tags if not (t.get("src") or t.get("href") or "data:").startswith("data:")]


def fake_assets(directory: Path, files: dict[str, bytes]) -> Manifest:
    """A small asset dir laid out as build.py lays it out."""
    for key, data in files.items():
        (directory / key).parent.mkdir(parents=True, exist_ok=True)
        (directory / key).write_bytes(data)
    manifest = {
        "files": {k: {"integrity": sri_sha384(v), "bytes": len(v)} for k, v in files.items()}
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest))
    return load_manifest(directory)


# --- the real page ---------------------------------------------------------------------


def test_rendered_page_has_no_external_url(built: Manifest) -> None:
    html = offline_graphiql_html()
    # The only absolute URL allowed is the SVG namespace of the inline favicon, which is a
    # name, never fetched.
    external = [
        url
        for url in ANY_URL.findall(html)
        if not re.match(r"https?://(127\.0\.0\.1|localhost)[:/]", url)
        and not url.startswith("http://www.w3.org/2000/svg")
    ]
    assert external == []
    assert "unpkg" not in html
    assert "jsdelivr" not in html


def test_every_asset_is_local_and_keeps_a_matching_sri_hash(built: Manifest) -> None:
    tags = asset_tags(offline_graphiql_html())
    assert len(tags) == len(built.integrity) == 7
    served = set()
    for tag in tags:
        url = tag.get("src") or tag["href"]
        assert url.startswith(STATIC_PREFIX + "/"), url
        key = url.removeprefix(STATIC_PREFIX + "/")
        on_disk = sri_sha384((ASSETS_DIR / key).read_bytes())
        assert tag["integrity"] == on_disk == built.integrity[key]
        served.add(key)
    assert served == set(built.integrity)  # exactly the files the page needs, no more


def test_built_files_are_the_bytes_strawberry_pins(built: Manifest) -> None:
    """Our npm files hash to what strawberry's template pins for the CDN copies."""
    pinned = {
        re.sub(r"^https://unpkg\.com/", "", tag.get("src") or tag["href"]): tag["integrity"]
        for tag in asset_tags(get_graphql_ide_html("graphiql"))
    }
    assert pinned == built.integrity


def test_page_is_built_once_and_cached(built: Manifest) -> None:
    assert offline_graphiql_html() is offline_graphiql_html()


def test_subscriptions_can_be_left_out(built: Manifest) -> None:
    assert "subscriptionUrl," in offline_graphiql_html(subscription_enabled=True)
    without = offline_graphiql_html(subscription_enabled=False)
    assert "subscriptionUrl," not in without
    assert "GraphiQL.createFetcher({" in without


async def test_static_route_serves_the_built_files(built: Manifest) -> None:
    app = Starlette(routes=graphiql_routes())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        key = "graphiql@3.8.3/graphiql.min.css"
        response = await client.get(f"{STATIC_PREFIX}/{key}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/css")
        assert sri_sha384(response.content) == built.integrity[key]
        missing = await client.get(f"{STATIC_PREFIX}/graphiql@3.8.3/nope.js")
        assert missing.status_code == 404


# --- rewriting rules on small templates ------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Manifest:
    return fake_assets(
        tmp_path,
        {"lib@1.0.0/dist/lib.js": b"console.log(1)", "@scope/ui@2.1.0/ui.css": b"a{}"},
    )


def test_rewrites_unpkg_and_jsdelivr_and_replaces_or_adds_integrity(small: Manifest) -> None:
    template = (
        '<script crossorigin src="https://unpkg.com/lib@1.0.0/dist/lib.js"\n'
        '  integrity="sha384-stale"></script>\n'
        "<link rel='stylesheet' href='https://cdn.jsdelivr.net/npm/@scope/ui@2.1.0/ui.css'/>\n"
        '<script src="/already/local.js"></script>\n'
    )
    html = render_graphiql(template, small, static_prefix="/s")
    assert 'src="/s/lib@1.0.0/dist/lib.js"' in html
    assert f'integrity="{small.integrity["lib@1.0.0/dist/lib.js"]}"' in html
    assert "sha384-stale" not in html
    assert "href='/s/@scope/ui@2.1.0/ui.css'" in html
    assert f'integrity="{small.integrity["@scope/ui@2.1.0/ui.css"]}"/>' in html
    assert '<script src="/already/local.js"></script>' in html


def test_unknown_version_names_the_url_and_the_fix(small: Manifest) -> None:
    template = '<script src="https://unpkg.com/lib@9.9.9/dist/lib.js"></script>'
    with pytest.raises(ConfigurationError, match=r"lib@9\.9\.9.*make assets"):
        render_graphiql(template, small)


def test_cdn_url_outside_an_asset_tag_is_refused(small: Manifest) -> None:
    template = '<script>import("https://unpkg.com/lib@1.0.0/dist/lib.js")</script>'
    with pytest.raises(ConfigurationError, match="still loads from a CDN"):
        render_graphiql(template, small)


def test_cdn_url_naming_no_npm_file_is_refused(small: Manifest) -> None:
    template = '<link rel="stylesheet" href="https://unpkg.com/lib"/>'
    with pytest.raises(ConfigurationError, match="names no npm file"):
        render_graphiql(template, small)


def test_disabling_subscriptions_fails_when_the_template_has_no_hook(small: Manifest) -> None:
    with pytest.raises(ConfigurationError, match="subscriptionUrl"):
        render_graphiql("<html></html>", small, subscription_enabled=False)


# --- missing or damaged assets ---------------------------------------------------------


def test_missing_assets_ask_for_make_assets(tmp_path: Path) -> None:
    for call in (
        lambda: load_manifest(tmp_path),
        lambda: build_offline_page(tmp_path),
        lambda: graphiql_routes(tmp_path),
    ):
        with pytest.raises(ConfigurationError, match="run `make assets`"):
            call()


def test_unreadable_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"unreadable.*make assets"):
        load_manifest(tmp_path)


def test_changed_or_deleted_file_is_refused(built: Manifest, tmp_path: Path) -> None:
    copy = tmp_path / "graphiql"
    shutil.copytree(ASSETS_DIR, copy)
    with (copy / "react@18.2.0/umd/react.production.min.js").open("ab") as f:
        f.write(b"\n")
    with pytest.raises(ConfigurationError, match="does not match its manifest hash"):
        load_manifest(copy)
    (copy / "react@18.2.0/umd/react.production.min.js").unlink()
    with pytest.raises(ConfigurationError, match="is missing"):
        load_manifest(copy)


def test_the_page_opens_its_websocket_with_the_headers_editor_credentials(built: Manifest) -> None:
    # GraphiQL sends its headers editor with HTTP requests only: the offline page also
    # hands them to connection_init, read from GraphiQL's storage when the socket opens.
    html = offline_graphiql_html(True)
    assert "wsConnectionParams: () => {" in html
    assert 'localStorage.getItem("graphiql:headers")' in html
    assert "wsConnectionParams" not in offline_graphiql_html(False)
