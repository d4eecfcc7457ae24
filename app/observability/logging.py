"""Structured logging: one structlog configuration for our code and for stdlib loggers.

``configure_logging`` is called once at start-up (calling it again replaces the previous
configuration; it never stacks handlers). Every line carries an ISO UTC timestamp, the
level, the logger name and whatever is bound in the current context, notably the request
id (``bind_request_id``), which follows a request across awaits because structlog keeps it
in a ``contextvars`` variable. Libraries that log through stdlib ``logging`` (uvicorn,
aiokafka, neo4j) go through the same processors, so their lines look like ours.

Secrets never reach the output: values under keys that name a secret are replaced, and
passwords inside URLs are masked (see ``redact_secrets``).
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import uuid
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from app.domain.errors import ConfigurationError

REDACTED = "[REDACTED]"
REQUEST_ID_KEY = "request_id"

_SECRET_KEY_PARTS = ("password", "passwd", "secret", "token", "api_key", "apikey", "authorization")
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")
# Loggers that install their own handlers; we route them through the root handler instead.
_ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    # Cached: a few dozen key names recur on every line (bounded: keys come from code).
    normalised = key.lower().replace("-", "_")
    return any(part in normalised for part in _SECRET_KEY_PARTS)


def _redact(key: str, value: Any) -> Any:
    """Numbers and booleans are kept even under a secret-looking key: ``token_count`` and
    ``max_tokens`` are counts, and we never hold a secret as a number."""
    if _is_secret_key(key) and not (value is None or isinstance(value, bool | int | float)):
        return REDACTED
    if isinstance(value, str):
        # The pattern needs "://" and "@"; most values hold neither, so skip the regex.
        if "@" not in value:
            return value
        return _URL_PASSWORD.sub(r"\g<head>" + REDACTED + "@", value)
    if isinstance(value, Mapping):
        return {k: _redact(str(k), v) for k, v in value.items()}
    if type(value) in (list, tuple):  # not subclasses: a namedtuple takes fields, not one iterable
        return type(value)(_redact("", v) for v in value)
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: replace secret values (by key name, at any depth) and URL passwords."""
    return {key: _redact(key, value) for key, value in event_dict.items()}


def _drop_formatted_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """``ExtraAdder`` copies ``record.message`` when another handler formatted the record
    first; it repeats ``event``."""
    if "_record" in event_dict and event_dict.get("message") == event_dict.get("event"):
        del event_dict["message"]
    # uvicorn adds a copy of its message with terminal colour codes for its own formatter.
    event_dict.pop("color_message", None)
    return event_dict


def _shared_processors() -> list[Processor]:
    """What every line goes through, whether it comes from structlog or stdlib logging."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_formatted_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        redact_secrets,
    ]


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ConfigurationError(f"unknown log level {level!r}")
    return number


class _KGHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Our root handler, marked so a second configuration replaces it."""


def configure_logging(
    level: str = "INFO", json: bool | None = None, *, stream: TextIO | None = None
) -> None:
    """Configure structlog and stdlib logging.

    ``json``: True for JSON lines, False for the console renderer, None for JSON unless
    the stream is a terminal. ``stream`` defaults to stderr (tests pass a buffer).
    """
    number = _level_number(level)
    out = stream if stream is not None else sys.stderr
    use_json = json if json is not None else not (hasattr(out, "isatty") and out.isatty())

    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),  # before redaction sees it
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger first used before configure_logging (imports, tests) must
        # still follow the configuration made later.
        cache_logger_on_first_use=False,
    )

    renderer: list[Processor]
    if use_json:
        renderer = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=out.isatty())]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )

    handler = _KGHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _KGHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(number)
    for name in _ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger named like a stdlib one (``get_logger(__name__)``)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


def new_request_id() -> str:
    """A fresh, unguessable request id (32 hex characters)."""
    return uuid.uuid4().hex


def bind_request_id(request_id: str) -> None:
    """Bind the request id to the current context: every line logged from here on in this
    task (and tasks it starts) carries it."""
    structlog.contextvars.bind_contextvars(**{REQUEST_ID_KEY: request_id})


def current_request_id() -> str | None:
    """The request id bound in this context, to carry it onward (bus messages, jobs)."""
    value = structlog.contextvars.get_contextvars().get(REQUEST_ID_KEY)
    return value if isinstance(value, str) else None


def clear_request_id() -> None:
    """Forget the request id (at the end of a request handled on a reused context)."""
    structlog.contextvars.unbind_contextvars(REQUEST_ID_KEY)
