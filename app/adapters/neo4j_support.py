"""What the Neo4j adapters share: a driver built from a URL and settings, driver errors
translated into ours, and values in both directions (times, JSON, full-text queries).

Error translation (every one chained with ``from``; the password never appears):

    ServiceUnavailable, SessionExpired,         UnavailableError (retryable)
    TransientError, no pooled connection in
    time, transaction timed out or terminated
    AuthError, Forbidden, driver settings,      ConfigurationError
    unknown database
    a value too long for an index key           BadInputError
    ConstraintError, other ClientErrors,        BackendError (retryable as the driver
    DatabaseError, other driver errors          says: mostly not)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import neo4j
import neo4j.exceptions as nx
import neo4j.time

from app.adapters.search_words import query_words
from app.domain.errors import (
    BackendError,
    BadInputError,
    ConfigurationError,
    KGError,
    UnavailableError,
)

SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
DEFAULT_PORT = 7687
DEFAULT_POOL_SIZE = 50
DEFAULT_ACQUIRE_TIMEOUT = 30.0  # seconds to wait for a pooled connection
DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds to open a new connection
DEFAULT_QUERY_TIMEOUT = 60.0  # seconds a transaction may run on the server
DEFAULT_RETRY_TIME = 30.0  # seconds managed transactions keep retrying transient errors

_UNAVAILABLE_TYPES = (
    nx.ServiceUnavailable,
    nx.SessionExpired,
    nx.TransientError,
    nx.ConnectionPoolError,
)
_CONFIGURATION_TYPES = (nx.AuthError, nx.Forbidden, nx.ConfigurationError)
_CONFIGURATION_CODES = ("Neo.ClientError.Database.DatabaseNotFound",)
# The server ended the transaction: it ran past its timeout (while waiting for a lock,
# it says LockClientStopped) or was terminated. A new attempt may well succeed.
_TIMEOUT_CODES = (
    "Neo.ClientError.Transaction.TransactionTimedOut",
    "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration",
    "Neo.ClientError.Transaction.LockClientStopped",
    "Neo.ClientError.Transaction.Terminated",
)
# What Neo4j says (as a DatabaseError) when a value is too long for a range index key.
_TOO_LARGE = "too large to index"


@dataclass(frozen=True, slots=True)
class Neo4jTarget:
    """Where a driver connects: the URL without credentials, the credentials apart."""

    url: str
    where: str  # host:port, for messages
    user: str | None
    password: str | None

    @property
    def auth(self) -> tuple[str, str] | None:
        if self.user is None and self.password is None:
            return None
        return (self.user or "neo4j", self.password or "")


def parse_target(url: str, user: str | None = None, password: str | None = None) -> Neo4jTarget:
    """Check a ``bolt://`` or ``neo4j://`` URL; credentials may be in it
    (``bolt://user:pass@host``) or given apart, the latter winning."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ConfigurationError("invalid Neo4j URL (host or port)") from exc
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"Neo4j URL scheme {parts.scheme or '(none)'!r} is not one of {', '.join(SCHEMES)}"
        )
    if not parts.hostname:
        raise ConfigurationError("the Neo4j URL names no host")
    if parts.path not in ("", "/"):
        raise ConfigurationError(
            "the Neo4j URL must not have a path; name the database with its own setting"
        )
    url_user = unquote(parts.username) if parts.username else None
    url_password = unquote(parts.password) if parts.password else None
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{netloc}:{port}"
    clean = urlunsplit((parts.scheme, netloc, "", parts.query, ""))
    return Neo4jTarget(
        url=clean,
        where=netloc,
        user=user if user is not None else url_user,
        password=password if password is not None else url_password,
    )


def build_driver(
    target: Neo4jTarget,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    retry_time: float = DEFAULT_RETRY_TIME,
) -> neo4j.AsyncDriver:
    """An async driver (no connection is opened until first use)."""
    check_positive(pool_size=pool_size, acquire_timeout=acquire_timeout)
    check_positive(connect_timeout=connect_timeout, retry_time=retry_time)
    try:
        return neo4j.AsyncGraphDatabase.driver(
            target.url,
            auth=target.auth,
            max_connection_pool_size=pool_size,
            connection_acquisition_timeout=acquire_timeout,
            connection_timeout=connect_timeout,
            max_transaction_retry_time=retry_time,
            # Warnings (deprecations, unbounded patterns) are logged; the information
            # notes are not: "index already exists" on every start (IF NOT EXISTS) and
            # "cartesian product" on every write (two id lookups joined on purpose).
            # "label/type/property does not exist" is expected on an empty graph.
            notifications_min_severity=neo4j.NotificationMinimumSeverity.WARNING,
            notifications_disabled_classifications=[
                neo4j.NotificationDisabledClassification.UNRECOGNIZED
            ],
            user_agent="kg-server",
        )
    except (nx.DriverError, ValueError, TypeError) as exc:
        detail = scrub(str(exc), target.password)
        raise ConfigurationError(f"cannot configure the Neo4j driver: {detail}") from exc


def driver_factory(
    url: str,
    user: str | None,
    password: str | None,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    retry_time: float = DEFAULT_RETRY_TIME,
) -> tuple[Neo4jTarget, Callable[[], neo4j.AsyncDriver]]:
    """The parsed target and a function that builds its driver at ``start()``; the
    settings are checked now, so a store refuses bad ones when it is constructed."""
    target = parse_target(url, user, password)
    check_positive(pool_size=pool_size, acquire_timeout=acquire_timeout)
    check_positive(connect_timeout=connect_timeout, retry_time=retry_time)

    def connect() -> neo4j.AsyncDriver:
        return build_driver(
            target,
            pool_size=pool_size,
            acquire_timeout=acquire_timeout,
            connect_timeout=connect_timeout,
            retry_time=retry_time,
        )

    return target, connect


def check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ConfigurationError(f"{name} must be positive, got {value}")


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def neo4j_error(exc: Exception, action: str, where: str, secret: str | None) -> KGError:
    """Our error for a driver error (see the table in the module docstring)."""
    code = getattr(exc, "code", None) or ""
    message = (exc.message if isinstance(exc, nx.Neo4jError) else None) or str(exc)
    message = message or type(exc).__name__
    detail = scrub(f"{message} ({code})" if code else message, secret)
    if isinstance(exc, _CONFIGURATION_TYPES) or code in _CONFIGURATION_CODES:
        return ConfigurationError(
            f"Neo4j at {where} refused the credentials, permissions or settings "
            f"while {action}: {detail}"
        )
    if code in _TIMEOUT_CODES:
        return UnavailableError(f"Neo4j at {where} ended the transaction while {action}: {detail}")
    if isinstance(exc, _UNAVAILABLE_TYPES):
        return UnavailableError(f"Neo4j at {where} is unavailable while {action}: {detail}")
    if isinstance(exc, nx.Neo4jError) and _TOO_LARGE in message.lower():
        return BadInputError(f"a value is too long to be indexed while {action}: {detail}")
    retryable = exc.is_retryable() if isinstance(exc, nx.Neo4jError | nx.DriverError) else False
    return BackendError(f"Neo4j at {where} failed while {action}: {detail}", retryable=retryable)


@contextmanager
def translate_errors(action: str, where: str, secret: str | None) -> Iterator[None]:
    """Re-raise driver errors raised inside the block as ours, chained."""
    try:
        yield
    except (nx.Neo4jError, nx.DriverError) as exc:
        raise neo4j_error(exc, action, where, secret) from exc


# --- values --------------------------------------------------------------------------


def encode_time(value: datetime) -> datetime:
    """An aware UTC datetime (stored as a Neo4j DATETIME). Naive means UTC, as in
    SQLite; a naive one would otherwise become a LOCAL DATETIME that sorts apart."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def encode_optional_time(value: datetime | None) -> datetime | None:
    return None if value is None else encode_time(value)


def decode_time(value: Any) -> datetime:
    if isinstance(value, neo4j.time.DateTime):
        value = value.to_native()
    if not isinstance(value, datetime):
        raise BackendError(f"a stored time is not a datetime: {value!r}")
    return encode_time(value)


def decode_optional_time(value: Any) -> datetime | None:
    return None if value is None else decode_time(value)


def encode_optional_json(value: Any, what: str) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInputError(f"{what} is not JSON-serialisable: {exc}") from exc


def decode_optional_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --- full-text queries -----------------------------------------------------------------

_LUCENE_SPECIAL = re.compile(r'([+\-&|!(){}\[\]^"~*?:\\/])')


def lucene_escape(text: str) -> str:
    """``text`` with every character of the Lucene query syntax backslash-escaped."""
    return _LUCENE_SPECIAL.sub(r"\\\1", text)


def lucene_query(text: str) -> str | None:
    """A Lucene query matching any of the words of ``text``; ``None`` if there are none.

    The words are ``search_words.query_words``, folded as the index text is, so both
    stores search the same terms. Each is escaped and quoted: no operator (``AND``,
    ``OR``, ``NOT``, ``+``, ``-``), field (``text:``), wildcard, fuzzy or range syntax
    survives.
    """
    terms = query_words(text)
    return " OR ".join(f'"{lucene_escape(word)}"' for word in terms) if terms else None
