"""JSON bodies of the Kafka event bus's messages, with a schema version.

Every message body is one UTF-8 JSON object with ``"v": SCHEMA_VERSION`` and a ``kind``
(``ingestion_request`` or ``ingestion_event``). Readers ignore fields they do not know,
so a writer may add an optional field without a new version; a change old readers would
misread bumps the version, and a reader refuses versions it does not know (a mixed
fleet during a rolling upgrade then fails loudly instead of guessing).

Times are ISO-8601 text as Python writes them: an aware time keeps its offset, a naive
one stays naive, so a request or event round-trips equal. The request id is not only
in the body: the bus also carries it in a ``request_id`` header (see ``request_id_of``),
which is what tools reading the topic see without parsing the body.

Encoding refuses what JSON cannot hold (``BadInputError``: the caller's data); decoding
refuses malformed bodies (``BackendError``: someone wrote garbage to our topic).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.adapters.request_codec import optional_text, request_fields, request_from_fields, text
from app.domain.errors import BackendError, BadInputError
from app.domain.models import IngestionEvent, IngestionRequest, JobStatus, Stage

SCHEMA_VERSION = 1
REQUEST_KIND = "ingestion_request"
EVENT_KIND = "ingestion_event"
REQUEST_ID_HEADER = "request_id"

Headers = list[tuple[str, bytes]]


def encode_request(request: IngestionRequest) -> bytes:
    return _dump(
        {"v": SCHEMA_VERSION, "kind": REQUEST_KIND, **request_fields(request)},
        f"the request of job {request.job_id}",
    )


def decode_request(body: bytes, header_request_id: str | None = None) -> IngestionRequest:
    """The request in ``body``; its request id falls back to the header's."""
    raw = _load(body, REQUEST_KIND)
    try:
        return request_from_fields(raw, header_request_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"malformed ingestion request on the bus: {exc!r}") from exc


def encode_event(event: IngestionEvent) -> bytes:
    return _dump(
        {
            "v": SCHEMA_VERSION,
            "kind": EVENT_KIND,
            "job_id": event.job_id,
            "status": event.status.value,
            "stage": event.stage.value,
            "progress": event.progress,
            "at": _time_text(event.at),
            "message": event.message,
            "document_id": event.document_id,
        },
        f"an event of job {event.job_id}",
    )


def decode_event(body: bytes) -> IngestionEvent:
    raw = _load(body, EVENT_KIND)
    try:
        at = _time(raw["at"])
        if at is None:
            raise ValueError("'at' is missing")
        progress = raw["progress"]
        if isinstance(progress, bool) or not isinstance(progress, int | float):
            raise TypeError(f"progress is a {type(progress).__name__}, not a number")
        return IngestionEvent(
            job_id=text(raw["job_id"]),
            status=JobStatus(raw["status"]),
            stage=Stage(raw["stage"]),
            progress=float(progress),
            at=at,
            message=optional_text(raw.get("message")),
            document_id=optional_text(raw.get("document_id")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendError(f"malformed ingestion event on the bus: {exc!r}") from exc


def request_id_headers(request_id: str | None) -> Headers | None:
    """Kafka headers carrying the request id (None when there is none)."""
    return None if not request_id else [(REQUEST_ID_HEADER, request_id.encode("utf-8"))]


def request_id_of(headers: Any) -> str | None:
    """The request id among a record's headers (a sequence of ``(key, bytes)``), if any.
    An undecodable value is ignored: the header is for logs, never worth a failure."""
    for key, value in headers or ():
        if key == REQUEST_ID_HEADER and isinstance(value, bytes):
            try:
                return value.decode("utf-8") or None
            except UnicodeDecodeError:
                return None
    return None


def _dump(raw: dict[str, Any], what: str) -> bytes:
    try:
        return json.dumps(raw, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError (lone surrogates) too
        raise BadInputError(f"{what} cannot be written as JSON: {exc}") from exc


def _load(body: bytes, kind: str) -> dict[str, Any]:
    try:
        raw = json.loads(body)
    except (TypeError, ValueError) as exc:  # UnicodeDecodeError too
        raise BackendError(f"a message on the bus is not UTF-8 JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise BackendError(f"a message on the bus is a JSON {type(raw).__name__}, not an object")
    version = raw.get("v")
    if version != SCHEMA_VERSION:
        raise BackendError(
            f"a message on the bus has schema version {version!r}; "
            f"this build reads version {SCHEMA_VERSION}"
        )
    if raw.get("kind") != kind:
        raise BackendError(f"expected a {kind} message on the bus, got {raw.get('kind')!r}")
    return raw


def _time_text(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(text(value))
