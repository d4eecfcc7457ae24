"""``kg ingest`` against a running server: files of every kind, stdin, and bad files
refused before anything is sent."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from tests.support.live_server import REPO, LiveServer


def kg(
    server: LiveServer, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "ingest", "--server", server.graphql, *args],
        cwd=REPO,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=300,
    )


def stats(server: LiveServer) -> dict[str, int]:
    body = httpx.post(
        server.graphql, json={"query": "{ stats { documents chunks entities relations } }"}
    )
    result: dict[str, int] = body.json()["data"]["stats"]
    return result


def test_ingest_txt_md_jsonl_and_stdin(server: LiveServer, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    txt = tmp_path / "notes.txt"
    txt.write_text(
        f"Marie Curie worked in Paris with Pierre Curie. Note {tag}.\n", encoding="utf-8"
    )
    md = tmp_path / "guide.md"
    md.write_text(
        f"# Guide {tag}\n\nAmazon opened an office in Seattle in 1994.\n", encoding="utf-8"
    )
    jl = tmp_path / "batch.jsonl"
    jl.write_text(
        "\n".join(
            json.dumps(
                {"title": f"Row {i} {tag}", "text": f"Google hired engineer {i} in Zurich. {tag}"}
            )
            for i in range(3)
        )
        + "\n",
        encoding="utf-8",
    )
    before = stats(server)
    result = kg(server, str(txt), str(md), str(jl))
    assert result.returncode == 0, result.stderr
    assert "5 completed, 0 failed" in result.stderr
    assert "entities" in result.stderr and "relations" in result.stderr
    after = stats(server)
    assert after["documents"] == before["documents"] + 5

    piped = kg(server, "-", stdin=f"Stdin text about Toyota in Nagoya, {tag}.".encode())
    assert piped.returncode == 0, piped.stderr
    assert "1 completed" in piped.stderr
    titles = httpx.post(
        server.graphql,
        json={
            "query": '{ documents(first: 20, filter: {titleContains: "'
            + tag
            + '"}) { edges { node { title source } } } }'
        },
    ).json()["data"]["documents"]["edges"]
    assert {e["node"]["title"] for e in titles} >= {f"Guide {tag}", f"Row 0 {tag}"}
    assert {"notes.txt", "guide.md", "batch.jsonl"} <= {e["node"]["source"] for e in titles}


def test_invalid_utf8_is_refused_before_sending(server: LiveServer, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(f"A fine document {uuid.uuid4().hex}.", encoding="utf-8")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 au lait\n")  # Latin-1, not UTF-8
    before = stats(server)
    result = kg(server, str(good), str(bad))
    assert result.returncode == 2
    assert "bad.txt: not valid UTF-8 (byte 3, line 1)" in result.stderr
    assert stats(server) == before  # the good file was not sent either


def test_malformed_jsonl_and_missing_file(server: LiveServer, tmp_path: Path) -> None:
    jl = tmp_path / "broken.jsonl"
    jl.write_text('{"title": "a", "text": "b"}\n{"title": "no text"}\n', encoding="utf-8")
    result = kg(server, str(jl))
    assert result.returncode == 2
    assert "broken.jsonl:2: needs string fields 'title' and 'text'" in result.stderr
    missing = kg(server, str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_server_refusal_is_reported(server: LiveServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n", encoding="utf-8")
    result = kg(server, str(empty))
    assert result.returncode == 2
    assert "BAD_USER_INPUT" in result.stderr and "empty" in result.stderr


def test_unreachable_server(tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_text("text", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "ingest",
            "--server",
            "http://127.0.0.1:9/graphql",
            str(doc),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "cannot reach the server" in result.stderr
