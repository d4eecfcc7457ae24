"""From what a caller presents to the principal it runs as.

A credential arrives as ``Authorization: Bearer <credential>`` or ``X-API-Key:
<credential>`` on HTTP, and in the ``connection_init`` payload of a WebSocket
(``{"Authorization": "Bearer ..."}``, ``{"authorization": ...}``, ``{"apiKey": ...}``,
or the same under ``"headers"``, where some clients put them). A credential that starts
with ``kg_`` is an API key; anything else is a JWT.

The mode decides what happens with it:

- ``local``: no credentials are configured and the server listens on loopback only:
  every caller is the local admin, and whatever it presents is ignored;
- ``open``: authentication is switched off on purpose: every caller gets the open role;
- ``enforced``: every caller must present a valid credential; one that presents none or
  a bad one is refused with ``UnauthenticatedError`` (``UnavailableError`` when the
  identity provider's keys cannot be fetched).

Credentials are never logged nor echoed in errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import structlog

from app.domain.auth import Principal, Role
from app.domain.errors import KGError, UnauthenticatedError
from app.security.api_keys import PREFIX as API_KEY_PREFIX
from app.security.api_keys import ApiKeys
from app.security.jwt_tokens import JwtVerifier

log = structlog.get_logger(__name__)

AuthMode = Literal["local", "open", "enforced"]

LOCAL_PRINCIPAL = Principal(subject="local", roles=frozenset({Role.ADMIN}), kind="local")

#: Who a caller is before (or without) a valid credential: no roles at all. The domain
#: has no "anonymous" kind; "open" with no roles can do nothing, so it is safe.
ANONYMOUS = Principal(subject="anonymous", roles=frozenset(), kind="open")

BEARER_HINT = "send 'Authorization: Bearer <token or API key>' (or 'X-API-Key: <API key>')"
_MAX_CREDENTIAL_CHARS = 16 * 1024


def open_principal(role: Role) -> Principal:
    return Principal(subject="open", roles=frozenset({role}), kind="open")


class Authenticator:
    """Turns presented credentials into principals, by mode (see the module doc)."""

    def __init__(
        self,
        mode: AuthMode,
        api_keys: ApiKeys,
        *,
        tokens: JwtVerifier | None = None,
        open_role: Role = Role.ADMIN,
    ) -> None:
        self.mode: AuthMode = mode
        self._api_keys = api_keys
        self._tokens = tokens
        self._open = open_principal(open_role)

    @property
    def fixed_principal(self) -> Principal | None:
        """The principal every caller gets when nothing is checked (local, open)."""
        if self.mode == "local":
            return LOCAL_PRINCIPAL
        if self.mode == "open":
            return self._open
        return None

    async def from_headers(self, headers: Mapping[str, str]) -> Principal:
        """The principal of an HTTP request (header names in lower case, as ASGI has them)."""
        if (fixed := self.fixed_principal) is not None:
            return fixed
        return await self.verify(credential_from_headers(headers), via="http")

    async def from_connection_params(self, params: Mapping[str, object] | None) -> Principal:
        """The principal of a WebSocket, from its ``connection_init`` payload."""
        if (fixed := self.fixed_principal) is not None:
            return fixed
        return await self.verify(credential_from_params(params or {}), via="websocket")

    async def verify(self, credential: str | None, *, via: str = "http") -> Principal:
        """The principal ``credential`` stands for (enforced mode)."""
        kind = "api_key" if credential and credential.startswith(API_KEY_PREFIX) else "token"
        try:
            if credential is None:
                raise UnauthenticatedError(
                    f"authentication required: {BEARER_HINT}", reason="missing"
                )
            if kind == "api_key":
                return await self._api_keys.verify(credential)
            if self._tokens is None:
                raise UnauthenticatedError(
                    "this server accepts API keys only (kg_...): no token issuer is configured",
                    reason="tokens_off",
                )
            return await self._tokens.verify(credential)
        except KGError as exc:
            log.info(
                "auth.refused",
                via=via,
                credential=kind if credential else None,
                code=exc.code,
                reason=exc.details.get("reason"),
            )
            raise

    async def aclose(self) -> None:
        if self._tokens is not None:
            await self._tokens.aclose()


def credential_from_headers(headers: Mapping[str, str]) -> str | None:
    """The credential of ``Authorization: Bearer`` or ``X-API-Key``; None when neither is
    sent. Two different credentials, or another scheme, are refused, never guessed at."""
    authorization = headers.get("authorization")
    bearer = _bearer(authorization) if authorization is not None else None
    api_key = _clean(headers.get("x-api-key"), "X-API-Key")
    if bearer is not None and api_key is not None and bearer != api_key:
        raise UnauthenticatedError(
            "two different credentials (Authorization and X-API-Key): send one",
            reason="ambiguous",
        )
    return bearer or api_key


def credential_from_params(params: Mapping[str, object]) -> str | None:
    """The credential of a ``connection_init`` payload (see the module doc)."""
    nested = params.get("headers")
    sources: list[Mapping[str, object]] = [params]
    if isinstance(nested, Mapping):
        sources.append(nested)
    found: set[str] = set()
    for source in sources:
        for name, value in source.items():
            lowered = name.lower()
            if lowered == "authorization":
                found.add(_bearer(_text(value, name)))
            elif lowered in ("apikey", "api_key", "x-api-key"):
                cleaned = _clean(_text(value, name), name)
                if cleaned is not None:
                    found.add(cleaned)
    if len(found) > 1:
        raise UnauthenticatedError(
            "two different credentials in connection_init: send one", reason="ambiguous"
        )
    return next(iter(found), None)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise UnauthenticatedError(f"{name} must be a string", reason="malformed")
    return value


def _bearer(value: str) -> str:
    scheme, _, rest = value.strip().partition(" ")
    credential = _clean(rest, "Authorization")
    if scheme.lower() != "bearer" or credential is None:
        raise UnauthenticatedError(
            f"the Authorization header must read 'Bearer <token or API key>': {BEARER_HINT}",
            reason="malformed",
        )
    return credential


def _clean(value: str | None, name: str) -> str | None:
    if value is None or not value.strip():
        return None
    credential = value.strip()
    if len(credential) > _MAX_CREDENTIAL_CHARS:
        raise UnauthenticatedError(f"{name} is too long", reason="too_large")
    return credential
