"""One text's sentence embedding through ONNX Runtime: the query path of the embedder.

Why: a query is one short text, and there torch's eager forward is mostly per-operator
overhead and skinny matrix products. In the latency benchmark's in-process column
(tests/benchmarks/query_latency.py) all-MiniLM-L6-v2 took 19-27 ms p50 per query on one
torch thread in its runs before this path existed, and takes 8-10 ms here through ONNX
Runtime for the same vector; more torch threads made the tail worse on busy cores.
Batches (ingestion) stay on torch.

The graph is exported from the loaded model itself: its transformer, then mean pooling
and normalisation exactly as its Pooling and Normalize modules compute them, so it holds
the same weights and nothing is downloaded. The export (a few seconds, torch's
TorchScript exporter) is cached under ``cache_dir`` in a file named by a digest of the
model's files, torch's and onnx's versions and ``EXPORT_FORMAT``: the same inputs give
the same name on any machine, a changed model a new one. It is written to a temporary
file and renamed, so a crash or a concurrent start never leaves half a file behind.

``precision="int8"`` serves that export with its weights quantized to int8 (ONNX
Runtime's dynamic quantization, one scale per output channel; activations are quantized
on the fly). It trades a little of the vector for speed: a query's vector moves slightly
away from the fp32 one, while the stored vectors stay fp32 from torch's batches, so it
may cost retrieval quality. tests/benchmarks/query_precision.py measures both sides
(time per query, and recall on the dev QA sets with fp32 and int8 queries) and states
when int8 is worth it. The quantized file is cached beside the export, named after it,
the precision, ``QUANTIZE_FORMAT`` and onnxruntime's version, and written the same way.

A model of another shape (another pooling, a Dense layer, a prompt, inputs other than
``input_ids`` / ``attention_mask`` / ``token_type_ids``) is not exported. ``build`` also
compares the session with the torch model on probe texts and refuses one whose vectors
differ (cosine under ``MIN_COSINE``, or ``MIN_COSINE_INT8`` for int8): stored vectors
must stay comparable with queries. Every refusal is a ``ConfigurationError``; the
embedder then keeps queries on torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from app.domain.errors import BackendError, ConfigurationError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

QueryPrecision = Literal["fp32", "int8"]

__all__ = [
    "EXPORT_FORMAT",
    "MIN_COSINE",
    "MIN_COSINE_INT8",
    "PRECISIONS",
    "QUANTIZE_FORMAT",
    "OnnxQueryEncoder",
    "QueryPrecision",
    "default_cache_dir",
]

EXPORT_FORMAT = 1  # bump when the exported graph changes: old files are then not reused
QUANTIZE_FORMAT = 1  # bump when the quantization changes: old int8 files are then not reused
OPSET = 17
PRECISIONS: tuple[QueryPrecision, ...] = get_args(QueryPrecision)
MIN_COSINE = 0.9999  # against the torch model, on every probe text
# int8 weights move a vector by design: by under 0.01 cosine on a typical question
# (tests/benchmarks/query_precision.py reports it on real ones) and more on a one-token
# text (the "x" probe, the worst of the probes, sits just above 0.98), so the fp32 bar
# cannot apply. 0.97 still refuses a broken graph, and weights quantized per tensor
# rather than per channel, which fall well below it on these probes.
MIN_COSINE_INT8 = 0.97
_MIN_COSINES: dict[str, float] = {"fp32": MIN_COSINE, "int8": MIN_COSINE_INT8}
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_PROBES = (
    "Who founded the university, and when?",
    "x",
    "Ünïcödé text with 東京 and an emoji 🙂.",
    " ".join(["a long text that goes past the model's window"] * 60),
)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/kg-server/onnx``, else ``~/.cache/kg-server/onnx``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "kg-server" / "onnx"


class OnnxQueryEncoder:
    """Unit-length embeddings of single texts from an ONNX Runtime session."""

    def __init__(
        self,
        session: Any,
        tokenizer: Tokenizer,
        inputs: Sequence[str],
        precision: QueryPrecision = "fp32",
    ) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = tuple(inputs)
        self.precision: QueryPrecision = precision

    @classmethod
    def build(
        cls,
        model: Any,
        model_dir: Path,
        cache_dir: Path,
        threads: int,
        precision: QueryPrecision = "fp32",
    ) -> OnnxQueryEncoder:
        """The encoder of a loaded ``SentenceTransformer`` (``model``), exported (and for
        ``int8`` quantized) on first use; ``ConfigurationError`` when the model cannot be
        served this way or ``precision`` is neither ``fp32`` nor ``int8``."""
        if precision not in PRECISIONS:
            raise ConfigurationError(
                f"no ONNX query path in precision {precision!r}: fp32 or int8",
                precision=precision,
            )
        ort = _onnxruntime()
        inputs = _supported_inputs(model)
        tokenizer = _private_tokenizer(model)
        export = cache_dir / f"{_fingerprint(model_dir)}.onnx"
        file = export if precision == "fp32" else _quantized_file(export)
        session = _cached_session(ort, file, threads)
        if session is None:
            # int8 is made from the export: reuse it when it loads, else export again.
            if precision == "fp32" or _cached_session(ort, export, 1) is None:
                _export(model, inputs, tokenizer, export)
            if precision == "int8":
                _quantize(export, file)
            session = _session(ort, file, threads)
        encoder = cls(session, tokenizer, inputs, precision)
        encoder._check_against(model)
        return encoder

    def encode(self, text: str) -> list[float]:
        import numpy as np

        encoding = self._tokenizer.encode(text)
        columns = {
            "input_ids": encoding.ids,
            "attention_mask": encoding.attention_mask,
            "token_type_ids": encoding.type_ids,
        }
        feed = {name: np.asarray([columns[name]], dtype=np.int64) for name in self._inputs}
        try:
            (vectors,) = self._session.run(None, feed)
        except Exception as exc:  # onnxruntime raises its own Exception subclasses
            raise BackendError(f"onnx runtime failed on a query: {exc}") from exc
        return list(vectors[0].tolist())  # Python floats, without a call per value

    def _check_against(self, model: Any) -> None:
        import torch

        with torch.inference_mode():
            expected = model.encode(list(_PROBES), convert_to_numpy=True, normalize_embeddings=True)
        threshold = _MIN_COSINES[self.precision]
        for text, want in zip(_PROBES, expected, strict=True):
            got = self.encode(text)
            cosine = float(sum(a * float(b) for a, b in zip(got, want, strict=True)))
            if cosine < threshold:
                raise ConfigurationError(
                    f"the {self.precision} ONNX model disagrees with the model (cosine "
                    f"{cosine:.6f} < {threshold} on {text[:40]!r}); queries stay on torch"
                )


def _supported_inputs(model: Any) -> tuple[str, ...]:
    """The model's input names, when it is transformer + mean pooling + normalize."""
    kinds = [type(module).__name__ for module in model]
    if kinds != ["Transformer", "Pooling", "Normalize"]:
        raise ConfigurationError(f"no ONNX query path for modules {kinds}")
    pooling = model[1]
    if getattr(pooling, "pooling_mode", None) not in ("mean", ("mean",)):
        raise ConfigurationError(f"no ONNX query path for pooling {pooling.pooling_mode!r}")
    if getattr(model, "default_prompt_name", None) is not None:
        raise ConfigurationError("no ONNX query path for a model with a default prompt")
    names = tuple(getattr(model.tokenizer, "model_input_names", ()))
    if not {"input_ids", "attention_mask"} <= set(names) or not set(names) <= set(_INPUTS):
        raise ConfigurationError(f"no ONNX query path for model inputs {names}")
    return tuple(n for n in _INPUTS if n in names)


def _private_tokenizer(model: Any) -> Tokenizer:
    """A copy of the model's own fast tokenizer, set as sentence-transformers sets it
    for one text (truncated to the model's window, no padding); a copy, because the
    model's tokenizer changes its settings on every call and is not safe to share."""
    from tokenizers import Tokenizer

    backend = getattr(model.tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ConfigurationError("no ONNX query path without a fast tokenizer")
    tokenizer = Tokenizer.from_str(backend.to_str())
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(model.max_seq_length))
    return tokenizer


def _fingerprint(model_dir: Path) -> str:
    """A digest of every file of the model and of what shapes the export."""
    digest = hashlib.sha256()
    for part in (f"format {EXPORT_FORMAT}", f"opset {OPSET}", *_versions("torch", "onnx")):
        digest.update(part.encode() + b"\0")
    for file in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(model_dir)).encode() + b"\0")
        with file.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()[:32]


def _versions(*packages: str) -> list[str]:
    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError as exc:
            raise ConfigurationError(f"no ONNX query path: {name} is not installed") from exc
    return found


def _export(model: Any, inputs: tuple[str, ...], tokenizer: Tokenizer, file: Path) -> None:
    """Transformer, mean pooling and normalisation as one ONNX graph, at ``file``."""
    import torch

    transformer = model[0].auto_model

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            features = dict(zip(inputs, tensors, strict=True))
            tokens = self.transformer(**features).last_hidden_state
            mask = features["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    encoding = tokenizer.encode(_PROBES[0])
    columns = {
        "input_ids": encoding.ids,
        "attention_mask": encoding.attention_mask,
        "token_type_ids": encoding.type_ids,
    }
    example = tuple(torch.tensor([columns[name]], dtype=torch.long) for name in inputs)
    axes = {name: {0: "batch", 1: "tokens"} for name in inputs}
    file.parent.mkdir(parents=True, exist_ok=True)
    was_training = transformer.training
    graph = Graph().eval()
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=file.parent)
    os.close(fd)
    try:
        # The exporter warns about tracing and its own deprecation; none of it concerns
        # a graph that build() then checks against the model.
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                example,
                tmp,
                input_names=list(inputs),
                output_names=["sentence_embedding"],
                dynamic_axes={**axes, "sentence_embedding": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        os.replace(tmp, file)
    except Exception as exc:  # the exporter fails in torch, onnx or the model's code
        raise ConfigurationError(f"cannot export the model to ONNX at {file}: {exc}") from exc
    finally:
        transformer.train(was_training)  # the exporter restores modes; make sure
        Path(tmp).unlink(missing_ok=True)


def _quantized_file(export: Path) -> Path:
    """Where the int8 model made from ``export`` is kept: beside it, named after it, the
    quantization's format and the quantizer's (onnxruntime's) version."""
    (version,) = _versions("onnxruntime")
    ort_version = version.split()[-1]
    return export.with_name(f"{export.stem}.int8-q{QUANTIZE_FORMAT}-ort{ort_version}.onnx")


def _quantize(export: Path, file: Path) -> None:
    """The export with int8 weights (one scale per output channel), at ``file``."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigurationError(f"no int8 ONNX query path: {exc}") from exc
    fd, tmp = tempfile.mkstemp(prefix=".quantize-", suffix=".onnx", dir=file.parent)
    os.close(fd)
    try:
        # Given the model itself (not its path), the quantizer keeps its intermediate
        # files in a private temporary directory rather than beside the export, where
        # two starts at once would share them.
        with _no_preprocessing_advice():
            quantize_dynamic(
                onnx.load(str(export)), tmp, weight_type=QuantType.QInt8, per_channel=True
            )
        os.replace(tmp, file)
    except Exception as exc:  # onnx or the quantizer fails on a file or a graph
        raise ConfigurationError(f"cannot quantize the ONNX model {export} to int8: {exc}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)


class _DropPreprocessingAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


@contextmanager
def _no_preprocessing_advice() -> Iterator[None]:
    """The quantizer logs, on the root logger, advice to pre-process the graph first
    (shape inference and graph fusions, meant for static quantization of image models);
    the int8 model is measured as quantized here, so the advice is noise."""
    root = logging.getLogger()
    advice = _DropPreprocessingAdvice()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)


def _cached_session(ort: Any, file: Path, threads: int) -> Any:
    """A session on an earlier export, or None when there is none (or a damaged one,
    which is then removed, to be exported again)."""
    if not file.is_file():
        return None
    try:
        return _session(ort, file, threads)
    except ConfigurationError:
        file.unlink(missing_ok=True)
        return None


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigurationError("no ONNX query path: onnxruntime is not installed") from exc
    return onnxruntime


def _session(ort: Any, file: Path, threads: int) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Waiting threads sleep rather than spin: the cores are shared with the API.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a damaged or foreign file
        raise ConfigurationError(f"cannot load the ONNX model {file}: {exc}") from exc
