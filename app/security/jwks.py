"""The signing keys an identity provider publishes as a JWKS, fetched and cached.

Each usable key is bound to exactly one algorithm by its own ``kty`` (and ``crv``):
RSA -> RS256, EC P-256 -> ES256. Anything else (``oct`` keys above all: a published
HMAC secret would let anyone sign) is skipped, as are RSA keys under 2048 bits, keys
for encryption and keys whose ``alg`` names another algorithm.

Fetching is polite to the provider: every fetch, whatever caused it (first use, an
expired cache, a token naming an unknown ``kid``), happens at most once per
``min_refetch_seconds``, so tokens with garbage key ids cannot make us hammer it, and
concurrent callers share one fetch. A failed fetch keeps the last good set in use; with
no set at all, callers get ``UnavailableError``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeyParameters, RSAKey

from app.domain.errors import ConfigurationError, UnavailableError

log = structlog.get_logger(__name__)

#: The algorithms a JWKS key may verify, by what the key is.
RSA_ALG = "RS256"
EC_ALG = "ES256"
EC_CURVE = "P-256"
MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A verification key and the one algorithm it may verify."""

    alg: str
    key: Key
    kid: str | None = None


def key_from_jwk(jwk: Mapping[str, Any]) -> TrustedKey | None:
    """The verification key a JWK describes, None when it is not one we accept.

    Only the public members are read, so a JWKS that leaks private parts still yields
    public keys."""
    kty, alg, use, ops = jwk.get("kty"), jwk.get("alg"), jwk.get("use"), jwk.get("key_ops")
    kid = jwk.get("kid")
    if (use is not None and use != "sig") or (ops is not None and "verify" not in ops):
        return None
    if kid is not None and not isinstance(kid, str):
        return None
    try:
        if kty == "RSA" and alg in (None, RSA_ALG):
            if _b64_bits(jwk.get("n")) < MIN_RSA_BITS:
                return None
            public = {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}
            rsa = RSAKey.import_key(public, _params(RSA_ALG, kid))
            return TrustedKey(RSA_ALG, rsa, kid)
        if kty == "EC" and jwk.get("crv") == EC_CURVE and alg in (None, EC_ALG):
            public = {"kty": "EC", "crv": EC_CURVE, "x": jwk["x"], "y": jwk["y"]}
            ec = ECKey.import_key(public, _params(EC_ALG, kid))
            return TrustedKey(EC_ALG, ec, kid)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        log.warning("jwks.key_skipped", kid=kid, kty=kty, error=type(exc).__name__)
    return None


def keys_from_jwks(document: object) -> list[TrustedKey]:
    """The usable keys of a JWKS document (``{"keys": [...]}``), in its order."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        return []
    found = (key_from_jwk(jwk) for jwk in document["keys"] if isinstance(jwk, dict))
    return [key for key in found if key is not None]


def _params(alg: str, kid: str | None) -> KeyParameters:
    """Key parameters that make joserfc itself refuse the key for any other algorithm."""
    params: KeyParameters = {"alg": alg, "use": "sig"}
    if kid is not None:
        params["kid"] = kid
    return params


def _b64_bits(value: object) -> int:
    if not isinstance(value, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return 0
    return int.from_bytes(raw, "big").bit_length()


class JwksKeySource:
    """The keys published at ``url``, cached for ``cache_seconds``.

    ``client`` is an ``httpx.AsyncClient`` owned by the caller (the server's lifespan);
    without one, this source makes its own and ``aclose`` closes it. ``clock`` is a
    monotonic clock in seconds."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        cache_seconds: float = 300,
        timeout_seconds: float = 5,
        min_refetch_seconds: float = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            scheme = httpx.URL(url).scheme
        except httpx.InvalidURL as exc:
            raise ConfigurationError("the JWKS URL is not a valid URL") from exc
        if scheme not in ("http", "https") or not httpx.URL(url).host:
            raise ConfigurationError("the JWKS URL must be an http:// or https:// URL")
        self.url = url
        self._client = client or httpx.AsyncClient()
        self._owns_client = client is None
        self._cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._min_refetch = min_refetch_seconds
        self._clock = clock
        self._keys: list[TrustedKey] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._last_error: UnavailableError | None = None
        self._inflight: asyncio.Task[None] | None = None

    async def keys_for(self, alg: str, kid: str | None) -> list[TrustedKey]:
        """The keys that may verify a token signed with ``alg`` naming ``kid``.

        An unknown ``kid`` triggers one refetch (rate-limited); an empty list means no
        published key fits. Raises ``UnavailableError`` when no key set was ever fetched."""
        if self._keys is None or self._clock() - self._fetched_at >= self._cache_seconds:
            await self._refresh()
        if self._keys is None:
            reason = self._last_error.message if self._last_error else "not fetched yet"
            raise UnavailableError(f"identity provider keys are unavailable: {reason}")
        if kid is not None and all(k.kid != kid for k in self._keys):
            await self._refresh()
        return [k for k in self._keys if k.alg == alg and (kid is None or k.kid == kid)]

    async def aclose(self) -> None:
        if self._inflight is not None:
            await asyncio.shield(self._inflight)
        if self._owns_client:
            await self._client.aclose()

    async def _refresh(self) -> None:
        """Join the fetch in flight, or start one unless the last began too recently."""
        if self._inflight is None:
            now = self._clock()
            if self._attempted_at is not None and now - self._attempted_at < self._min_refetch:
                return
            self._attempted_at = now
            self._inflight = asyncio.create_task(self._fetch_and_store())
        # shield: a caller cancelled mid-wait must not cancel the fetch others share
        await asyncio.shield(self._inflight)

    async def _fetch_and_store(self) -> None:
        try:
            keys = await self._fetch()
        except UnavailableError as exc:
            self._last_error = exc
            log.warning(
                "jwks.fetch_failed", url=self.url, error=exc.message, cached=self._keys is not None
            )
        else:
            self._keys, self._fetched_at, self._last_error = keys, self._clock(), None
            log.info("jwks.fetched", url=self.url, keys=len(keys))
        finally:
            self._inflight = None

    async def _fetch(self) -> list[TrustedKey]:
        try:
            async with self._client.stream(
                "GET", self.url, timeout=self._timeout, headers={"Accept": "application/json"}
            ) as response:
                if response.status_code != httpx.codes.OK:
                    raise UnavailableError(
                        f"JWKS at {self.url} answered HTTP {response.status_code}"
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise UnavailableError(f"JWKS at {self.url} is over {MAX_JWKS_BYTES} bytes")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise UnavailableError(
                f"could not fetch JWKS from {self.url} ({type(exc).__name__})"
            ) from exc
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise UnavailableError(f"JWKS at {self.url} is not JSON") from exc
        keys = keys_from_jwks(document)
        if not keys:
            raise UnavailableError(f"JWKS at {self.url} has no usable RS256 or ES256 signing key")
        return keys
