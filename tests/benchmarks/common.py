"""Shared pieces of the benchmark scripts: data loading, RESULTS.md sections, and timing
embedders side by side."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.ports.models import Embedder

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
FIXTURES = REPO / "tests" / "fixtures"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def corpus(limit: int) -> list[dict[str, Any]]:
    """Paragraphs of the shared Wikipedia corpus (the fixture slice when it is absent)."""
    path = SHARED / "corpus" / "docs.jsonl"
    rows = read_jsonl(path if path.exists() else FIXTURES / "corpus_sample.jsonl")
    return rows[:limit]


def top_k_agreement(pairs: Sequence[tuple[Sequence[str], Sequence[str]]]) -> tuple[float, float]:
    """For (found, expected) top-k lists of ids: the share of pairs that are the same
    list (same ids, same order), and the mean share of each expected list found (a pair
    where nothing is expected agrees when nothing was found)."""
    if not pairs:
        return 1.0, 1.0
    same = sum(list(found) == list(expected) for found, expected in pairs) / len(pairs)
    shares = [
        len(set(found) & set(expected)) / len(expected) if expected else float(not found)
        for found, expected in pairs
    ]
    return same, sum(shares) / len(shares)


def write_section(heading: str, body: str, results: Path = RESULTS) -> None:
    """Replace (or append) the ``## heading`` section of RESULTS.md, leaving the rest."""
    text = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    results.write_text(text, encoding="utf-8")


def alternate(embedders: Sequence[Embedder], texts: Sequence[str]) -> list[list[float]]:
    """Milliseconds per single-text embedding for each embedder, all embedding the same
    texts in turn (which goes first swaps at every text), so that they see the same
    moments of a shared machine."""
    times: list[list[float]] = [[] for _ in embedders]
    for n, text in enumerate(texts):
        order = range(len(embedders)) if n % 2 == 0 else reversed(range(len(embedders)))
        for i in order:
            started = time.perf_counter()
            embedders[i].embed([text])
            times[i].append((time.perf_counter() - started) * 1000)
    return times
