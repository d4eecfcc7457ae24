"""Metrics: our own registry, the kg_* names the server needs, the /metrics body."""

from __future__ import annotations

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from app.observability import metrics
from app.observability.metrics import (
    GRAPHQL_OPERATION_SECONDS,
    GRAPHQL_OPERATIONS,
    INGESTION_JOBS,
    INGESTION_STAGE_SECONDS,
    MODELS_LOADED,
    READY,
    REGISTRY,
    record_cache_lookup,
    record_dataloader_batch,
    render_latest,
    sample_value,
)


def families() -> dict[str, set[str]]:
    """Metric family name -> sample names, parsed from the rendered body."""
    body, _ = render_latest()
    return {
        family.name: {sample.name for sample in family.samples}
        for family in text_string_to_metric_families(body.decode())
    }


def test_registry_is_ours_not_the_global_one() -> None:
    assert REGISTRY is not prometheus_client.REGISTRY
    global_names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("kg_") for name in global_names)
    body, _ = render_latest()
    assert b"python_gc" not in body  # no default process/platform collectors


def test_every_metric_the_server_needs_is_exported_with_kg_prefix() -> None:
    # Labelled metrics appear once a child exists; touch one of each.
    GRAPHQL_OPERATIONS.labels("Docs", "query", "ok").inc(0)
    GRAPHQL_OPERATION_SECONDS.labels("Docs", "query")
    metrics.BACKEND_CALLS.labels("graph", "get_entities").inc(0)
    metrics.BACKEND_CALL_SECONDS.labels("graph", "get_entities")
    metrics.BACKEND_ERRORS.labels("graph", "get_entities", "UNAVAILABLE").inc(0)
    INGESTION_JOBS.labels("QUEUED").inc(0)
    INGESTION_STAGE_SECONDS.labels("CHUNKED")
    metrics.CACHE_HITS.labels("kg").inc(0)
    metrics.CACHE_MISSES.labels("kg").inc(0)
    metrics.DATALOADER_BATCHES.labels("entity_by_id").inc(0)
    metrics.DATALOADER_BATCH_SIZE.labels("entity_by_id")
    MODELS_LOADED.labels("embedder").set(0)
    expected = {
        "kg_graphql_operations",
        "kg_graphql_operation_seconds",
        "kg_backend_calls",
        "kg_backend_call_seconds",
        "kg_backend_errors",
        "kg_ingestion_jobs",
        "kg_ingestion_stage_seconds",
        "kg_ingestion_documents",
        "kg_ingestion_chunks",
        "kg_ingestion_entities",
        "kg_event_bus_dropped_events",
        "kg_cache_hits",
        "kg_cache_misses",
        "kg_dataloader_batches",
        "kg_dataloader_batch_size",
        "kg_ready",
        "kg_models_loaded",
    }
    found = families()
    assert expected <= set(found)
    assert all(name.startswith("kg_") for name in found)
    assert "kg_backend_calls_total" in found["kg_backend_calls"]
    assert "kg_backend_call_seconds_bucket" in found["kg_backend_call_seconds"]
    assert not any("hit_ratio" in name for name in found)  # ratios come from PromQL


def test_render_latest_is_prometheus_text_with_current_values() -> None:
    READY.set(1)
    before = sample_value("kg_ingestion_jobs_total", {"status": "COMPLETED"})
    INGESTION_JOBS.labels(status="COMPLETED").inc()
    body, content_type = render_latest()
    assert content_type.startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert "kg_ready 1.0" in text
    assert f'kg_ingestion_jobs_total{{status="COMPLETED"}} {before + 1}' in text
    READY.set(0)
    assert "kg_ready 0.0" in render_latest()[0].decode()


def test_cache_lookups_count_hits_and_misses_per_cache() -> None:
    hits = sample_value("kg_cache_hits_total", {"cache": "t-cache"})
    misses = sample_value("kg_cache_misses_total", {"cache": "t-cache"})
    for hit in (True, True, False):
        record_cache_lookup("t-cache", hit=hit)
    assert sample_value("kg_cache_hits_total", {"cache": "t-cache"}) == hits + 2
    assert sample_value("kg_cache_misses_total", {"cache": "t-cache"}) == misses + 1
    assert sample_value("kg_cache_hits_total", {"cache": "other"}) == 0.0


def test_dataloader_batches_count_runs_and_observe_sizes() -> None:
    record_dataloader_batch("t_loader", 7)
    record_dataloader_batch("t_loader", 50)
    labels = {"loader": "t_loader"}
    assert sample_value("kg_dataloader_batches_total", labels) == 2
    assert sample_value("kg_dataloader_batch_size_count", labels) == 2
    assert sample_value("kg_dataloader_batch_size_sum", labels) == 57
    assert sample_value("kg_dataloader_batch_size_bucket", {**labels, "le": "5.0"}) == 0
    assert sample_value("kg_dataloader_batch_size_bucket", {**labels, "le": "10.0"}) == 1
    assert sample_value("kg_dataloader_batch_size_bucket", {**labels, "le": "50.0"}) == 2


def test_sample_value_of_an_unknown_metric_is_zero() -> None:
    assert sample_value("kg_no_such_metric_total") == 0.0
