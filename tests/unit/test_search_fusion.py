"""Reciprocal rank fusion of the vector and keyword lists (HYBRID search)."""

from __future__ import annotations

import pytest

from app.domain.models import ChunkHit
from app.services.search import RRF_K, fuse


def hits(*chunks: str) -> list[ChunkHit]:
    return [ChunkHit(chunk_id=c, document_id=f"doc-{c[0]}", score=0.0) for c in chunks]


def test_a_chunk_in_both_lists_outranks_one_in_a_single_list() -> None:
    fused = fuse([hits("a1", "b1", "c1"), hits("c1", "d1")], 10)
    assert [h.chunk_id for h in fused] == ["c1", "a1", "b1", "d1"]  # b1, d1 tie: by id
    assert fused[0].score == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert fused[1].score == pytest.approx(1 / (RRF_K + 1))
    assert fused[0].document_id == "doc-c"


def test_ties_go_to_the_better_single_rank_then_the_chunk_id() -> None:
    # a1 and x1 both rank 1 once: equal scores, equal best rank: by id
    fused = fuse([hits("x1", "b1"), hits("a1", "c1")], 10)
    assert [h.chunk_id for h in fused] == ["a1", "x1", "b1", "c1"]


def test_only_the_best_k_and_nothing_from_nothing() -> None:
    assert [h.chunk_id for h in fuse([hits("a1", "b1", "c1"), hits("d1")], 2)] == ["a1", "d1"]
    assert fuse([[], []], 5) == []
    assert [h.chunk_id for h in fuse([[], hits("a1")], 5)] == ["a1"]
