"""Settings come from KG_* variables; a bad value names its variable and stops start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.config import load_settings
from app.domain.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KG_GRAPH_URL", "KG_VECTOR_URL", "KG_BUS_URL", "KG_CACHE_URL", "KG_LLM_URL"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    assert (s.graph_url, s.vector_url, s.bus_url, s.cache_url, s.llm_url) == (
        "sqlite://",
        "edge://",
        "memory://",
        "memory://",
        "extractive://",
    )
    assert s.host == "127.0.0.1" and s.port == 8000
    assert s.data_path(s.graph_url, "graph.sqlite3") == s.data_dir / "graph.sqlite3"


def test_environment_and_nested_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KG_LIMITS__MAX_TEXT_BYTES", "1234")
    monkeypatch.setenv("KG_PIPELINE__CHUNK_TOKENS", "128")
    monkeypatch.setenv("KG_GRAPH_URL", f"sqlite://{tmp_path}/g.db")
    s = load_settings()
    assert s.limits.max_text_bytes == 1234 and s.pipeline.chunk_tokens == 128
    assert s.data_path(s.graph_url, "x") == tmp_path / "g.db"


@pytest.mark.parametrize(
    ("var", "value", "says"),
    [
        ("KG_PORT", "eighty", "KG_PORT"),
        ("KG_PORT", "70000", "KG_PORT"),
        ("KG_GRAPH_URL", "mysql://db", "KG_GRAPH_URL"),
        ("KG_VECTOR_URL", "ftp://x", "KG_VECTOR_URL"),
        ("KG_BUS_URL", "rabbit://x", "KG_BUS_URL"),
        ("KG_CACHE_URL", "memcached://x", "KG_CACHE_URL"),
        ("KG_LLM_URL", "openai://x", "KG_LLM_URL"),
        ("KG_JOBS_URL", "postgres://x", "KG_JOBS_URL"),
        ("KG_JOBS_FINISHED_TTL_SECONDS", "0", "KG_JOBS_FINISHED_TTL_SECONDS"),
        ("KG_LOG_LEVEL", "LOUD", "KG_LOG_LEVEL"),
        ("KG_LIMITS__MAX_TEXT_BYTES", "0", "KG_LIMITS__MAX_TEXT_BYTES"),
        ("KG_PIPELINE__EMBEDDING_PRECISION", "fp8", "KG_PIPELINE__EMBEDDING_PRECISION"),
        ("KG_PIPELINE__CHUNK_OVERLAP_TOKENS", "300", "chunk_overlap_tokens"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, says: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError, match=says):
        load_settings()


def test_bad_value_stops_serve_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "KG_PORT": "eighty", "KG_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "KG_PORT" in result.stderr
    assert "Traceback" not in result.stderr
