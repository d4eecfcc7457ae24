"""Prometheus metrics of the server, on a registry of our own.

A dedicated ``REGISTRY`` (not prometheus-client's global one) keeps /metrics to what we
define and lets tests read exact values. Every name starts with ``kg_``. Ratios (the cache
hit ratio, errors per call) are not exported: compute them in PromQL from the counters,
e.g. ``rate(kg_cache_hits_total[5m]) / (rate(kg_cache_hits_total[5m]) +
rate(kg_cache_misses_total[5m]))``.

Single-process collection; several API processes are scraped one by one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

# Backend calls run from well under a millisecond (SQLite, cache) to seconds (LLM).
_FAST_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
# Ingestion stages: embedding a long document on CPU can take minutes.
_STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

# --- GraphQL ---------------------------------------------------------------------------

GRAPHQL_OPERATIONS = Counter(
    "kg_graphql_operations_total",
    "GraphQL operations executed.",
    ["operation_name", "operation_type", "outcome"],
    registry=REGISTRY,
)
GRAPHQL_OPERATION_SECONDS = Histogram(
    "kg_graphql_operation_seconds",
    "Duration of GraphQL operations.",
    ["operation_name", "operation_type"],
    buckets=_FAST_BUCKETS,
    registry=REGISTRY,
)

# --- backends (counted by app.observability.instrument) --------------------------------

BACKEND_CALLS = Counter(
    "kg_backend_calls_total",
    "Calls made to a port (one per batch).",
    ["port", "method"],
    registry=REGISTRY,
)
BACKEND_CALL_SECONDS = Histogram(
    "kg_backend_call_seconds",
    "Duration of calls to a port.",
    ["port", "method"],
    buckets=_FAST_BUCKETS,
    registry=REGISTRY,
)
BACKEND_ERRORS = Counter(
    "kg_backend_errors_total",
    "Failed calls to a port, by error code (INTERNAL for unexpected errors).",
    ["port", "method", "code"],
    registry=REGISTRY,
)

# --- ingestion -------------------------------------------------------------------------

INGESTION_JOBS = Counter(
    "kg_ingestion_jobs_total",
    "Ingestion jobs by status reached (QUEUED when accepted, COMPLETED or FAILED at the end).",
    ["status"],
    registry=REGISTRY,
)
INGESTION_STAGE_SECONDS = Histogram(
    "kg_ingestion_stage_seconds",
    "Duration of each ingestion stage.",
    ["stage"],
    buckets=_STAGE_BUCKETS,
    registry=REGISTRY,
)
INGESTED_DOCUMENTS = Counter(
    "kg_ingestion_documents_total", "Documents fully stored.", registry=REGISTRY
)
INGESTED_CHUNKS = Counter("kg_ingestion_chunks_total", "Chunks stored.", registry=REGISTRY)
INGESTED_ENTITIES = Counter(
    "kg_ingestion_entities_total", "Entities written (before merging).", registry=REGISTRY
)

# --- event bus -------------------------------------------------------------------------

EVENTS_DROPPED = Counter(
    "kg_event_bus_dropped_events_total",
    "Ingestion events dropped for a subscriber whose queue was full.",
    registry=REGISTRY,
)
EVENT_SUBSCRIPTIONS = Gauge(
    "kg_event_subscriptions",
    "Ingestion event subscriptions open in this process (ingestionProgress, ingestionEvents).",
    registry=REGISTRY,
)

# --- cache -----------------------------------------------------------------------------

CACHE_HITS = Counter("kg_cache_hits_total", "Cache hits.", ["cache"], registry=REGISTRY)
CACHE_MISSES = Counter("kg_cache_misses_total", "Cache misses.", ["cache"], registry=REGISTRY)

# --- DataLoaders -----------------------------------------------------------------------

DATALOADER_BATCHES = Counter(
    "kg_dataloader_batches_total",
    "DataLoader batch function runs.",
    ["loader"],
    registry=REGISTRY,
)
DATALOADER_BATCH_SIZE = Histogram(
    "kg_dataloader_batch_size",
    "Keys per DataLoader batch.",
    ["loader"],
    buckets=_BATCH_SIZE_BUCKETS,
    registry=REGISTRY,
)

# --- process ---------------------------------------------------------------------------

READY = Gauge(
    "kg_ready", "1 when the process serves traffic (what /readyz says).", registry=REGISTRY
)
MODELS_LOADED = Gauge(
    "kg_models_loaded",
    "1 when the named model is loaded in this process.",
    ["model"],
    registry=REGISTRY,
)


def record_cache_lookup(cache: str, hit: bool) -> None:
    """Count one lookup in the named cache."""
    (CACHE_HITS if hit else CACHE_MISSES).labels(cache=cache).inc()


def record_dataloader_batch(loader: str, size: int) -> None:
    """Count one batch function run of the named DataLoader and its number of keys."""
    DATALOADER_BATCHES.labels(loader=loader).inc()
    DATALOADER_BATCH_SIZE.labels(loader=loader).observe(size)


def sample_value(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of one sample (0.0 when absent): for tests and health output."""
    value = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def render_latest() -> tuple[bytes, str]:
    """The /metrics body in the Prometheus text format, and its content type.

    Announced as text format 0.0.4, which every Prometheus reads; our names are plain
    ASCII, so the body is the same in both versions the client library knows."""
    return generate_latest(REGISTRY), CONTENT_TYPE_PLAIN_0_0_4
