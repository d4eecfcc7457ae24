"""One structured log line and metrics per GraphQL operation: name, type, duration and
outcome (``ok``, ``error`` for coded client errors, ``failed`` for masked bugs)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import structlog
from graphql import OperationType
from strawberry.extensions import SchemaExtension

from app.observability.metrics import GRAPHQL_OPERATION_SECONDS, GRAPHQL_OPERATIONS

log = structlog.get_logger("graphql")


class OperationObserver(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        ctx = self.execution_context
        elapsed = time.perf_counter() - started
        name = ctx.operation_name or "anonymous"
        try:
            kind = ctx.operation_type.value
        except RuntimeError:  # the document did not parse: no operation type
            kind = OperationType.QUERY.value
        errors = list(getattr(ctx.result, "errors", None) or []) or list(
            ctx.pre_execution_errors or []
        )
        codes = sorted({str((e.extensions or {}).get("code", "")) for e in errors})
        outcome = "failed" if "INTERNAL_SERVER_ERROR" in codes else "error" if errors else "ok"
        GRAPHQL_OPERATIONS.labels(name, kind, outcome).inc()
        GRAPHQL_OPERATION_SECONDS.labels(name, kind).observe(elapsed)
        log.info(
            "graphql.operation",
            operation=name,
            type=kind,
            outcome=outcome,
            codes=codes or None,
            ms=round(elapsed * 1000, 2),
        )
