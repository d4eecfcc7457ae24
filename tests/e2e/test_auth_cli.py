"""Safe defaults, as an operator meets them: real ``kg`` processes.

A fresh ``kg serve`` bound to 0.0.0.0 without authentication refuses to start; disabled on
purpose it starts with a warning; on loopback it says it runs in local mode. The first
admin key comes from ``kg create-api-key`` (its secret alone on stdout, never listed),
and a server enforcing API keys alone accepts it, from ``kg ingest`` too."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.live_server import REPO, LiveServer, free_port, kg_env, stop, wait_for

AUTH_OFF = {  # whatever the outer environment holds, these runs start unconfigured
    "KG_AUTH_JWT_SECRET": "",
    "KG_AUTH_JWT_PUBLIC_KEY": "",
    "KG_AUTH_JWKS_URL": "",
    "KG_AUTH_REQUIRED": "",
    "KG_AUTH_DISABLED": "",
}


def kg(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=REPO,
        env=kg_env(data_dir, {**AUTH_OFF, **(env or {})}),
        capture_output=True,
        text=True,
        timeout=300,
    )


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


@contextmanager
def serving(
    data_dir: Path, host: str, env: dict[str, str], timeout: float = 120
) -> Iterator[tuple[str, Path]]:
    """``kg serve`` once it answers /healthz (models may still be loading). Not its
    ``server.started`` log line: uvicorn runs the lifespan, which logs it, before it
    binds the port, so a request right after the line could be refused."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", host, "--port", str(port)],
            cwd=REPO,
            env=kg_env(data_dir, {**AUTH_OFF, **env}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            f"http://127.0.0.1:{port}/healthz",
            process,
            lambda: log_path.read_text(errors="replace"),
            timeout,
        )
        yield f"http://127.0.0.1:{port}/graphql", log_path
    finally:
        stop(process)


def auth_line(path: Path) -> dict[str, Any]:
    [line] = [line for line in log_lines(path) if line.get("event") == "auth.mode"]
    return line


def test_a_fresh_start_on_all_addresses_without_auth_refuses(tmp_path: Path) -> None:
    started = time.monotonic()
    result = kg(tmp_path, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "refusing to serve on 0.0.0.0 without authentication" in result.stderr
    for setting in ("KG_AUTH_JWT_SECRET", "KG_AUTH_JWKS_URL", "KG_AUTH_DISABLED=true"):
        assert setting in result.stderr
    assert time.monotonic() - started < 120  # refused at once, not after loading models


def test_disabled_on_purpose_starts_with_a_warning(tmp_path: Path) -> None:
    env = {"KG_AUTH_DISABLED": "true", "KG_AUTH_OPEN_ROLE": "reader"}
    with serving(tmp_path, "0.0.0.0", env) as (url, log_path):
        line = auth_line(log_path)
        assert (line["level"], line["mode"], line["role"]) == ("warning", "open", "reader")
        stats = httpx.post(url, json={"query": "{ stats { documents } }"}, timeout=30).json()
        assert stats == {"data": {"stats": {"documents": 0}}}
        ingest = httpx.post(
            url,
            json={"query": 'mutation { deleteDocument(id: "doc_x") { id } }'},
            timeout=30,
        ).json()
        assert ingest["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_loopback_without_credentials_says_local_mode(server: LiveServer) -> None:
    line = auth_line(server.log_path)
    assert (line["level"], line["mode"]) == ("info", "local")
    assert "every caller is admin" in line["detail"]


def test_the_first_admin_key_comes_from_the_cli(tmp_path: Path) -> None:
    created = kg(tmp_path, "create-api-key", "--name", "bootstrap admin", "--role", "admin")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n" and secret.startswith("kg_")
    key_id = secret[3:19]
    assert key_id in created.stderr and secret not in created.stderr

    listed = kg(tmp_path, "list-api-keys")
    assert listed.returncode == 0 and key_id in listed.stdout
    assert secret not in listed.stdout and "bootstrap admin" in listed.stdout

    bad_role = kg(tmp_path, "create-api-key", "--name", "x", "--role", "root")
    assert bad_role.returncode != 0 and "invalid choice" in bad_role.stderr

    env = {"KG_AUTH_REQUIRED": "true"}
    with serving(tmp_path, "0.0.0.0", env) as (url, log_path):
        assert auth_line(log_path)["mode"] == "enforced"
        query = {"query": "{ stats { documents } }"}
        anonymous = httpx.post(url, json=query, timeout=30)
        assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="kg"'
        keyed = httpx.post(url, json=query, headers={"X-API-Key": secret}, timeout=30)
        assert keyed.json() == {"data": {"stats": {"documents": 0}}}

        doc = tmp_path / "note.txt"
        doc.write_text("Grace Hopper worked on COBOL.\n", encoding="utf-8")
        ingest = ["ingest", "--server", url, "--no-wait", str(doc)]
        refused = kg(tmp_path, *ingest)
        assert refused.returncode != 0 and "UNAUTHENTICATED" in refused.stderr
        accepted = kg(tmp_path, *ingest, env={"KG_API_KEY": secret})
        assert accepted.returncode == 0, accepted.stderr
        assert "queued 1 document" in accepted.stderr

        revoked = kg(tmp_path, "revoke-api-key", key_id)
        assert revoked.returncode == 0, revoked.stderr
        after = httpx.post(url, json=query, headers={"X-API-Key": secret}, timeout=30)
        assert after.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        log_text = log_path.read_text()
    assert secret not in log_text
    assert kg(tmp_path, "list-api-keys").stdout.strip() == ""
    assert "revoked" in kg(tmp_path, "list-api-keys", "--all").stdout


@pytest.mark.parametrize("args", [["revoke-api-key", "nothex"], ["revoke-api-key", "0" * 16]])
def test_revoking_a_key_that_does_not_exist_fails_clearly(tmp_path: Path, args: list[str]) -> None:
    result = kg(tmp_path, *args)
    assert result.returncode == 2 and "no API key" in result.stderr
