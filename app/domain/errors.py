"""The one error hierarchy of the server.

Every failure that crosses a layer is a ``KGError``. Adapters translate their drivers'
exceptions into these at the boundary (``raise ... from exc``); the API maps ``code`` to
``extensions.code`` and shows ``message`` to the client. Anything that is not a
``KGError`` is a bug: it is logged and masked.

    KGError                      code            retryable
    ├── BadInputError            BAD_USER_INPUT  no
    ├── NotFoundError            NOT_FOUND       no
    ├── UnauthenticatedError     UNAUTHENTICATED no
    ├── ForbiddenError           FORBIDDEN       no
    ├── RateLimitedError         RATE_LIMITED    yes
    ├── QueryTooComplexError     QUERY_TOO_COMPLEX no
    ├── UnavailableError         UNAVAILABLE     yes  (a backend is down or not ready)
    ├── ConflictError            CONFLICT        no   (e.g. a store owned by another process)
    ├── ConfigurationError       CONFIGURATION   no   (bad settings; stops start-up)
    └── BackendError             INTERNAL        per instance (a backend misbehaved)
"""

from __future__ import annotations

from typing import Any, ClassVar


class KGError(Exception):
    """Root of every error the server raises on purpose."""

    code: ClassVar[str] = "INTERNAL"
    default_retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, retryable: bool | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.default_retryable if retryable is None else retryable
        self.details = details


class BadInputError(KGError):
    code = "BAD_USER_INPUT"


class NotFoundError(KGError):
    code = "NOT_FOUND"


class UnauthenticatedError(KGError):
    code = "UNAUTHENTICATED"


class ForbiddenError(KGError):
    code = "FORBIDDEN"


class RateLimitedError(KGError):
    code = "RATE_LIMITED"
    default_retryable = True


class QueryTooComplexError(KGError):
    code = "QUERY_TOO_COMPLEX"


class UnavailableError(KGError):
    code = "UNAVAILABLE"
    default_retryable = True


class ConflictError(KGError):
    code = "CONFLICT"


class ConfigurationError(KGError):
    code = "CONFIGURATION"


class BackendError(KGError):
    code = "INTERNAL"
