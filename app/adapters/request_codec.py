"""An ingestion request as JSON fields: one shape for the bus and both job stores.

Times are ISO-8601 text as Python writes them (an aware time keeps its offset, a naive
one stays naive), so a request round-trips equal. ``request_from_fields`` checks the
types it reads and raises ``KeyError``, ``TypeError`` or ``ValueError`` on a malformed
body; each caller says what that means where it read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.domain.models import DocumentInput, IngestionRequest


def request_fields(request: IngestionRequest) -> dict[str, Any]:
    data = request.input
    return {
        "job_id": request.job_id,
        "document_id": request.document_id,
        "request_id": request.request_id,
        "input": {
            "title": data.title,
            "text": data.text,
            "source": data.source,
            "published_at": None if data.published_at is None else data.published_at.isoformat(),
            "metadata": data.metadata,
        },
    }


def request_from_fields(
    raw: Mapping[str, Any], fallback_request_id: str | None = None
) -> IngestionRequest:
    """The request ``request_fields`` wrote; a missing request id falls back."""
    data = raw["input"]
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata is a {type(metadata).__name__}, not an object")
    published = optional_text(data.get("published_at"))
    return IngestionRequest(
        job_id=text(raw["job_id"]),
        document_id=text(raw["document_id"]),
        request_id=optional_text(raw.get("request_id")) or fallback_request_id,
        input=DocumentInput(
            title=text(data["title"]),
            text=text(data["text"]),
            source=optional_text(data.get("source")),
            published_at=None if published is None else datetime.fromisoformat(published),
            metadata=metadata,
        ),
    )


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)
