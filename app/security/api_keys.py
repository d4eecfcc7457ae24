"""API keys: created by admins, shown once, verified on every request, revoked for good.

A secret reads ``kg_<id>_<token>``: ``id`` is the key's short public id (16 hex
characters) and ``token`` 32 random bytes in base64url (43 characters). Because the
secret names its key, verifying it is one ``get`` by id, never a scan of every key.

The store keeps a random 16-byte salt and ``HMAC-SHA256(salt, secret)``, never the
secret. A fast keyed hash is the standard for API keys and enough: the secret holds 256
random bits, so a stolen table cannot be searched by brute force however fast the hash.
Slow KDFs (bcrypt, scrypt, Argon2) exist for passwords, whose few bits of entropy must
be stretched; for random keys they would only make every request slower.

Verification compares digests in constant time and does the same work whether the id is
unknown or the token wrong (an unknown id is hashed against a dummy salt), so timing does
not tell which ids exist. There is no verification cache: every ``verify`` reads the
store, so a revocation takes effect at once in every process sharing it. Live
subscriptions opened with a key learn of its revocation through ``revoked_since``.
The secret is never logged and never put in an error.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from app.domain.auth import ApiKey, Principal, Role
from app.domain.errors import (
    BadInputError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthenticatedError,
)
from app.ports.api_key_store import ApiKeyStore, StoredApiKey

log = structlog.get_logger(__name__)

PREFIX = "kg_"
ID_BYTES = 8  # 16 hex characters: public, only needs to be unique
TOKEN_BYTES = 32  # 256 random bits: what makes the secret unguessable
SALT_BYTES = 16
MAX_NAME_LENGTH = 100
_ID_ATTEMPTS = 3  # fresh ids tried when one collides (2^-64 each)

_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"kg_(?P<id>[0-9a-f]{16})_[A-Za-z0-9_-]{43}")
_SECRET_LENGTH = len(PREFIX) + 2 * ID_BYTES + 1 + 43

# Stand-ins hashed and compared when the id is unknown, so that costs what a wrong
# token costs. Random per process: no secret can ever match them.
_DUMMY_SALT = secrets.token_bytes(SALT_BYTES)
_DUMMY_DIGEST = secrets.token_bytes(hashlib.sha256().digest_size)


def digest_of(salt: bytes, secret: str) -> bytes:
    """``HMAC-SHA256(salt, secret)``: what the store keeps instead of the secret."""
    return hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).digest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ApiKeys:
    """The API key use cases over an ``ApiKeyStore`` (started and closed by its owner)."""

    def __init__(self, store: ApiKeyStore, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._store = store
        self._clock = clock

    async def create(self, name: str, role: Role, by: Principal) -> tuple[ApiKey, str]:
        """A new key and its secret. The secret is returned this once and never again."""
        _require_admin(by, "create API keys")
        clean = _checked_name(name)
        if not isinstance(role, Role):
            raise BadInputError(f"unknown role {role!r}")
        for attempt in range(1, _ID_ATTEMPTS + 1):
            key_id = secrets.token_hex(ID_BYTES)
            secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(TOKEN_BYTES)}"
            salt = secrets.token_bytes(SALT_BYTES)
            key = ApiKey(
                id=key_id, name=clean, role=role, created_at=self._clock(), created_by=by.subject
            )
            try:
                await self._store.create(StoredApiKey(key, salt, digest_of(salt, secret)))
            except ConflictError:
                if attempt == _ID_ATTEMPTS:
                    raise
                continue
            log.info("api_key.created", key_id=key_id, role=role.value, by=by.subject)
            return key, secret
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def verify(self, secret: str) -> Principal:
        """The principal a presented secret stands for; UnauthenticatedError when it is
        malformed, unknown, wrong or revoked (revoked is only said to the key's holder)."""
        match = (
            _SECRET.fullmatch(secret)
            if isinstance(secret, str) and len(secret) == _SECRET_LENGTH
            else None
        )
        if match is None:
            log.info("api_key.rejected", reason="malformed")
            raise UnauthenticatedError("malformed API key")
        key_id = match["id"]
        stored = await self._store.get(key_id)
        salt, expected = (
            (_DUMMY_SALT, _DUMMY_DIGEST) if stored is None else (stored.salt, stored.digest)
        )
        matches = hmac.compare_digest(digest_of(salt, secret), expected)
        if stored is None or not matches:
            log.info("api_key.rejected", key_id=key_id, reason="unknown or wrong secret")
            raise UnauthenticatedError("invalid API key")
        key = stored.key
        if not key.active:
            log.info("api_key.rejected", key_id=key_id, reason="revoked")
            raise UnauthenticatedError("API key revoked")
        return Principal(
            subject=f"api-key:{key.id}",
            roles=frozenset({key.role}),
            kind="api_key",
            key_id=key.id,
        )

    async def revoke(self, key_id: str, by: Principal) -> ApiKey:
        """Revoke a key for good; revoking it again keeps the first time. NotFoundError
        when there is no such key."""
        _require_admin(by, "revoke API keys")
        if not (isinstance(key_id, str) and _ID.fullmatch(key_id)):
            # Not echoed: an admin may have pasted a whole secret here.
            raise NotFoundError("no API key has that id (ids are 16 hex characters)")
        key = await self._store.revoke(key_id, self._clock())
        if key is None:
            raise NotFoundError(f"no API key {key_id}", key_id=key_id)
        log.info("api_key.revoked", key_id=key.id, by=by.subject)
        return key

    async def list(self, include_revoked: bool = False) -> builtins.list[ApiKey]:
        """Every key (active ones only unless asked), oldest first; never a secret."""
        return await self._store.all(include_revoked)

    async def revoked_since(self, since: datetime) -> builtins.list[str]:
        """Ids of keys revoked at or after ``since``, from any process: what closes the
        live subscriptions a revoked key opened."""
        return await self._store.revoked_since(since)


def _require_admin(by: Principal, what: str) -> None:
    if not by.may(Role.ADMIN):
        raise ForbiddenError(f"only admins may {what}")


def _checked_name(name: str) -> str:
    """The name without surrounding spaces: 1 to 100 printable characters."""
    if not isinstance(name, str):
        raise BadInputError("an API key's name must be text")
    clean = name.strip()
    if not 1 <= len(clean) <= MAX_NAME_LENGTH:
        raise BadInputError(f"an API key's name must have 1 to {MAX_NAME_LENGTH} characters")
    if not clean.isprintable():
        raise BadInputError("an API key's name must be printable (no control characters)")
    return clean
