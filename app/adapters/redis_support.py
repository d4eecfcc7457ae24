"""What every Redis adapter shares: reading its URL and translating redis-py's errors,
so each names the server and scrubs the password the same way."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import redis.asyncio
import redis.exceptions
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry

from app.domain.errors import BackendError, ConfigurationError, KGError, UnavailableError

DEFAULT_PORT = 6379


def redis_error(exc: Exception, action: str, where: str, secret: str | None) -> KGError:
    """Our error for a redis-py error; ``secret`` (the password) is scrubbed from it."""
    detail = str(exc) or type(exc).__name__
    if secret:
        detail = detail.replace(secret, "***")
    auth_errors = (
        redis.exceptions.AuthenticationError,
        redis.exceptions.AuthorizationError,
        redis.exceptions.AuthenticationWrongNumberOfArgsError,
        redis.exceptions.NoPermissionError,
    )
    if isinstance(exc, auth_errors):
        return ConfigurationError(
            f"Redis at {where} refused the credentials or the command while {action}: {detail}"
        )
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return UnavailableError(f"Redis at {where} is unreachable while {action}: {detail}")
    if isinstance(exc, TimeoutError):
        return UnavailableError(f"Redis at {where} timed out while {action}")
    return BackendError(f"Redis at {where} failed while {action}: {detail}")


def check_url(url: str) -> tuple[str, str | None]:
    """``host:port/db`` to name the server in messages, and the password to scrub.
    Stricter than redis-py, which reads a non-numeric db as db 0."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ConfigurationError(
            f"Redis URL scheme {parts.scheme or '(none)'!r} is not supported; "
            "use redis:// or rediss://"
        )
    secret = unquote(parts.password) if parts.password else None
    try:
        port = parts.port or DEFAULT_PORT
        db = int(parts.path.strip("/") or "0")
        parse_url(url)  # query options redis-py would refuse at connect time
    except ValueError as exc:
        detail = str(exc).replace(secret, "***") if secret else str(exc)
        raise ConfigurationError(f"invalid Redis URL (port, db or options): {detail}") from exc
    return f"{parts.hostname or 'localhost'}:{port}/{db}", secret


async def connect(
    url: str, socket_timeout: float, retry: Retry, where: str, secret: str | None
) -> redis.asyncio.Redis:
    """A client (replies decoded to str) that answered PING; our error, the password
    scrubbed, when it did not."""
    client = redis.asyncio.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=retry,
    )
    try:
        await client.ping()
    except (redis.exceptions.RedisError, TimeoutError) as exc:
        await client.aclose()
        raise redis_error(exc, "connecting", where, secret) from exc
    except BaseException:
        await client.aclose()
        raise
    return client
