"""The composition root: the one place that names concrete adapters.

``build_container`` reads the settings, picks an adapter per port by URL scheme, wraps
each in the metrics proxy and wires the services. The Starlette lifespan and the CLI
both call it; tests call it too, with overrides, so they run the same wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from pydantic import SecretStr

from app.config import Settings
from app.observability.instrument import instrument
from app.pipeline.ingest import IngestionPipeline
from app.pipeline.progress import JobTracker
from app.pipeline.worker import IngestionWorker
from app.ports.api_key_store import ApiKeyStore
from app.ports.cache import Cache
from app.ports.event_bus import EventBus
from app.ports.generator import Generator
from app.ports.graph_store import GraphStore
from app.ports.job_store import JobStore
from app.ports.models import Embedder, Extractor
from app.ports.rate_limiter import Bucket, RateLimiter
from app.ports.vector_store import VectorStore
from app.security.api_keys import ApiKeys
from app.security.rate_limits import RateLimits, RateLimitSettings
from app.services.answers import ANSWER_TTL_SECONDS, AnswerService
from app.services.catalog import CatalogService
from app.services.extractive_generator import ExtractiveGenerator
from app.services.ingestion import IngestionService
from app.services.question_entities import QuestionEntities
from app.services.question_retrieval import QuestionRetrieval
from app.services.result_cache import ResultCache
from app.services.search import SearchService

if TYPE_CHECKING:  # adapters are imported when chosen, not at start-up
    from app.adapters.neo4j_connection import Neo4jConnection

log = structlog.get_logger(__name__)


def _scheme(url: str) -> str:
    return urlsplit(url).scheme


class Neo4jConnections:
    """One Neo4j connection (one driver, one pool) per URL, shared by the stores on it:
    with ``KG_GRAPH_URL`` and ``KG_VECTOR_URL`` the same, graph and vectors share it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._by_url: dict[str, Neo4jConnection] = {}

    def __call__(self, url: str) -> Neo4jConnection:
        if url not in self._by_url:
            from app.adapters.neo4j_connection import Neo4jConnection

            n = self._settings.neo4j
            self._by_url[url] = Neo4jConnection(
                url, n.user, _secret(n.password), **_neo4j_pool(self._settings)
            )
        return self._by_url[url]


def make_graph_store(settings: Settings, neo4j: Neo4jConnections | None = None) -> GraphStore:
    scheme = _scheme(settings.graph_url)
    if scheme == "sqlite":
        from app.adapters.sqlite_graph_store import SqliteGraphStore

        return SqliteGraphStore(settings.data_path(settings.graph_url, "graph.sqlite3"))
    from app.adapters.neo4j_graph_store import Neo4jGraphStore

    return Neo4jGraphStore((neo4j or Neo4jConnections(settings))(settings.graph_url))


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _neo4j_pool(settings: Settings) -> dict[str, Any]:
    n = settings.neo4j
    return {
        "database": n.database,
        "pool_size": n.pool_size,
        "acquire_timeout": n.acquire_timeout,
        "query_timeout": n.query_timeout,
    }


def make_vector_store(settings: Settings, neo4j: Neo4jConnections | None = None) -> VectorStore:
    url = settings.vector_url
    scheme = _scheme(url)
    if scheme == "edge":
        from app.adapters.qdrant_edge_vector_store import QdrantEdgeVectorStore

        return QdrantEdgeVectorStore(settings.data_path(url, "vectors"))
    if scheme == "local":
        from app.adapters.qdrant_vector_store import QdrantVectorStore

        return QdrantVectorStore(url=None, path=settings.data_path(url, "qdrant-local"))
    if scheme in ("http", "https"):
        from app.adapters.qdrant_vector_store import QdrantVectorStore

        return QdrantVectorStore(url=url, path=None)
    from app.adapters.neo4j_vector_store import Neo4jVectorStore

    return Neo4jVectorStore((neo4j or Neo4jConnections(settings))(url))


def make_job_store(settings: Settings) -> JobStore:
    url = settings.jobs_url
    if _scheme(url) in ("redis", "rediss"):
        from app.adapters.redis_job_store import RedisJobStore

        return RedisJobStore(url, finished_ttl=settings.jobs_finished_ttl_seconds)
    from app.adapters.sqlite_job_store import SqliteJobStore

    return SqliteJobStore(settings.data_path(url, "jobs.sqlite3"))


def make_api_key_store(settings: Settings) -> ApiKeyStore:
    """API keys beside the jobs by default: Redis when jobs are on Redis, else SQLite."""
    url = settings.api_keys_url
    if _scheme(url) in ("redis", "rediss"):
        from app.adapters.redis_api_key_store import RedisApiKeyStore

        return RedisApiKeyStore(url)
    from app.adapters.sqlite_api_key_store import SqliteApiKeyStore

    return SqliteApiKeyStore(settings.data_path(url, "api_keys.sqlite3"))


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """Buckets beside the cache: in Redis when the cache is (every process shares them),
    in process otherwise."""
    if _scheme(settings.cache_url) in ("redis", "rediss"):
        from app.adapters.redis_rate_limiter import RedisRateLimiter

        return RedisRateLimiter(settings.cache_url)
    from app.adapters.memory_rate_limiter import MemoryRateLimiter

    return MemoryRateLimiter()


def rate_limit_policy(settings: Settings) -> RateLimitSettings:
    r = settings.rate_limits
    return RateLimitSettings(
        enabled=r.enabled,
        general=Bucket(r.general_rate, r.general_burst),
        ask=Bucket(r.ask_rate, r.ask_burst),
        ingest=Bucket(r.ingest_rate, r.ingest_burst),
        ipv6_prefix=r.ipv6_prefix,
        fail_open=r.fail_open,
    )


def make_bus(settings: Settings) -> EventBus:
    scheme = _scheme(settings.bus_url)
    if scheme == "memory":
        from app.adapters.memory_event_bus import MemoryEventBus

        return MemoryEventBus()
    from app.adapters.kafka_event_bus import kafka_bus_from_url

    return kafka_bus_from_url(settings.bus_url)


def make_cache(settings: Settings) -> Cache:
    from app.adapters.aiocache_cache import AiocacheCache

    return AiocacheCache(settings.cache_url, namespace="kg-cache")


def make_extractor(settings: Settings) -> Extractor:
    from app.adapters.spacy_extractor import SpacyExtractor

    return SpacyExtractor(model=settings.pipeline.spacy_model)


def make_embedder(settings: Settings) -> Embedder:
    from app.adapters.sentence_transformer_embedder import SentenceTransformerEmbedder

    p = settings.pipeline
    return SentenceTransformerEmbedder(
        model=p.embedding_model,
        batch_size=p.embedding_batch_size,
        precision=p.embedding_precision,
        threads=p.torch_threads,
        query_threads=p.query_threads,
        query_precision=p.query_precision,
    )


def make_generator(settings: Settings, extractor: Extractor) -> Generator:
    """``extractive://`` (no LLM) or ``ollama://host:port`` / ``ollama+https://``."""
    parts = urlsplit(settings.llm_url)
    if parts.scheme == "extractive":
        return ExtractiveGenerator(extractor)
    from app.adapters.ollama_generator import OllamaGenerator

    scheme = "https" if parts.scheme == "ollama+https" else "http"
    return OllamaGenerator(f"{scheme}://{parts.netloc or '127.0.0.1:11434'}", settings.llm)


@dataclass
class Container:
    settings: Settings
    graph: GraphStore
    vectors: VectorStore
    jobs: JobStore
    bus: EventBus
    cache: Cache
    extractor: Extractor
    embedder: Embedder
    generator: Generator
    api_key_store: ApiKeyStore
    rate_limiter: RateLimiter
    api_keys: ApiKeys = field(init=False)
    rate_limits: RateLimits = field(init=False)
    catalog: CatalogService = field(init=False)
    search: SearchService = field(init=False)
    answers: AnswerService = field(init=False)
    ingestion: IngestionService = field(init=False)
    worker: IngestionWorker = field(init=False)
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list, init=False)
    _started: list[Any] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.api_keys = ApiKeys(self.api_key_store)
        self.rate_limits = RateLimits(self.rate_limiter, rate_limit_policy(s))
        tracker = JobTracker(self.jobs, self.bus)
        self.catalog = CatalogService(self.graph, s.limits)
        self.search = SearchService(
            self.graph, self.vectors, self.embedder, s.limits, self.cache.namespaced("kg-search")
        )
        retrieval = QuestionRetrieval(
            self.search, self.graph, QuestionEntities(self.graph, self.extractor)
        )
        self.answers = AnswerService(
            retrieval,
            self.graph,
            self.generator,
            s.limits,
            s.llm.context_tokens,
            ResultCache(self.cache.namespaced("kg-answers"), self.graph, ANSWER_TTL_SECONDS),
        )
        self.ingestion = IngestionService(
            self.graph, self.vectors, self.jobs, self.bus, tracker, s.limits
        )
        pipeline = IngestionPipeline(
            self.extractor, self.embedder, self.graph, self.vectors, s.pipeline
        )
        self.worker = IngestionWorker(
            self.bus, self.jobs, self.graph, pipeline, tracker, s.pipeline.workers or 1
        )

    @property
    def ready(self) -> bool:
        return self.embedder.loaded and self.extractor.loaded

    async def start(self, *, workers: bool = True) -> None:
        """Open every backend; then, in the background, load the models and run the
        in-process workers. Readiness (``ready``) follows the models."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            for component in (
                self.graph,
                self.jobs,
                self.api_key_store,
                self.rate_limiter,
                self.bus,
            ):
                await component.start()
                self._started.append(component)
            await self.vectors.start(self.embedder.dimension)
            self._started.append(self.vectors)
            await self.generator.start()
            self._started.append(self.generator)
        except BaseException:
            await self.close()  # what did open closes again: no connection left behind
            raise
        self._tasks.append(asyncio.create_task(self._load_models(), name="load-models"))
        if workers and self.settings.pipeline.workers > 0:
            if _scheme(self.settings.bus_url) == "memory":
                await self.ingestion.resume_unfinished()
            self._tasks.append(asyncio.create_task(self.worker.run(), name="ingestion-worker"))

    async def _load_models(self) -> None:
        await asyncio.to_thread(self.extractor.load)
        await asyncio.to_thread(self.embedder.load)
        log.info("models.loaded", extractor=self.extractor.name, embedder=self.embedder.name)

    async def wait_ready(self) -> None:
        await asyncio.to_thread(self.extractor.load)
        await asyncio.to_thread(self.embedder.load)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for component in reversed(self._started):
            try:
                await component.close()
            except Exception:
                log.exception("shutdown.close_failed", component=type(component).__name__)
        self._started.clear()
        await self.cache.close()


def build_container(settings: Settings, **overrides: Any) -> Container:
    """Wire every port by settings; ``overrides`` replace an adapter by port name."""

    def pick(name: str, make: Any) -> Any:
        return overrides[name] if name in overrides else make(settings)

    neo4j = Neo4jConnections(settings)
    extractor = pick("extractor", make_extractor)
    embedder = pick("embedder", make_embedder)
    return Container(
        settings=settings,
        graph=instrument("graph", pick("graph", lambda s: make_graph_store(s, neo4j))),
        vectors=instrument("vectors", pick("vectors", lambda s: make_vector_store(s, neo4j))),
        jobs=instrument("jobs", pick("jobs", make_job_store)),
        bus=pick("bus", make_bus),
        cache=pick("cache", make_cache),
        extractor=extractor,
        embedder=embedder,
        generator=pick("generator", lambda s: make_generator(s, extractor)),
        api_key_store=instrument("api_keys", pick("api_key_store", make_api_key_store)),
        rate_limiter=pick("rate_limiter", make_rate_limiter),
    )
