"""Bearer JWT verification: a compact token in, a ``Principal`` out, or ``UnauthenticatedError``.

Exactly one key source is configured: an HMAC secret (HS256), PEM public keys (RSA ->
RS256, EC P-256 -> ES256) or the JWKS URL of an identity provider (see ``jwks``). The
algorithm a token may use follows from the kind of key, never from the token's header,
so ``alg: none`` is always refused and so is algorithm confusion (an HS256 token "signed"
with the RSA public key's PEM as the HMAC secret: no HMAC key exists to check it).

Policy, deliberately strict:

- ``exp`` and ``sub`` are always required: a token that never expires is refused.
- ``nbf`` and ``iat`` are checked when present; all times allow ``leeway_seconds``.
- ``iss`` and ``aud`` are required and compared when configured, ignored when not.
- the roles claim (``roles``) must be a JSON list of strings when present; a bare
  string is refused rather than guessed at (is ``"reader writer"`` one role or two?).
  Unknown role names are ignored, as an identity provider may carry other apps' roles;
  a token without the claim gives a principal with no roles.
- tokens over ``max_token_bytes`` are refused before any parsing.

Failure messages say what to fix and never echo the token, its claims or a secret.
Built on joserfc, the JOSE library of authlib's authors: ``authlib.jose`` is deprecated
in its favour (it warns on import) and is untyped.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from joserfc.errors import (
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import ECKey, OctKey, RSAKey
from joserfc.jws import CompactSignature, JWSRegistry, extract_compact, validate_compact
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry
from pydantic import SecretStr

from app.domain.auth import Principal, Role
from app.domain.errors import ConfigurationError, UnauthenticatedError
from app.security.jwks import EC_ALG, MIN_RSA_BITS, RSA_ALG, JwksKeySource, TrustedKey

HMAC_ALG = "HS256"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key must be at least 256 bits
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)
_HEADER_RULES = JWSRegistry(strict_check_header=False)  # types of known fields, and crit


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """What a verifier trusts. Set exactly one of ``secret``, ``public_key`` (PEM text,
    one or more keys or certificates) and ``jwks_url``."""

    secret: SecretStr | None = None
    public_key: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 30
    jwks_cache_seconds: int = 300
    jwks_timeout_seconds: float = 5
    jwks_min_refetch_seconds: float = 10
    required_claims: tuple[str, ...] = ("exp",)
    roles_claim: str = "roles"
    max_token_bytes: int = 8 * 1024


def _refuse(message: str, reason: str) -> UnauthenticatedError:
    return UnauthenticatedError(message, reason=reason)


def _malformed() -> UnauthenticatedError:
    return _refuse("malformed token: expected a compact JWT (three base64url parts)", "malformed")


class JwtVerifier:
    """Verifies bearer JWTs against the configured keys and claims policy.

    ``http`` is the client a JWKS is fetched with (owned by the caller); ``jwks``
    replaces the key source built from the settings; ``clock`` gives wall-clock seconds
    for the time claims."""

    def __init__(
        self,
        settings: JwtSettings,
        *,
        http: httpx.AsyncClient | None = None,
        jwks: JwksKeySource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        sources = [settings.secret, settings.public_key, settings.jwks_url]
        if sum(source is not None for source in sources) != 1:
            raise ConfigurationError(
                "set exactly one of KG_AUTH_JWT_SECRET, KG_AUTH_JWT_PUBLIC_KEY and KG_AUTH_JWKS_URL"
            )
        self._settings = settings
        self._clock = clock
        self._static: list[TrustedKey] = []
        self._jwks: JwksKeySource | None = None
        if settings.secret is not None:
            self._static = [_secret_key(settings.secret)]
        elif settings.public_key is not None:
            self._static = _public_keys(settings.public_key)
        else:
            assert settings.jwks_url is not None
            self._jwks = jwks or JwksKeySource(
                settings.jwks_url,
                client=http,
                cache_seconds=settings.jwks_cache_seconds,
                timeout_seconds=settings.jwks_timeout_seconds,
                min_refetch_seconds=settings.jwks_min_refetch_seconds,
            )
        self.algorithms = frozenset(
            {k.alg for k in self._static} if self._jwks is None else {RSA_ALG, EC_ALG}
        )
        self._registries = {
            alg: JWSRegistry(algorithms=[alg], strict_check_header=False) for alg in self.algorithms
        }

    async def verify(self, token: str) -> Principal:
        """The principal ``token`` (the compact JWT, without ``Bearer``) stands for.

        Raises ``UnauthenticatedError`` for any bad token, ``UnavailableError`` when the
        identity provider's keys cannot be fetched and none are cached."""
        signed = self._parse(token)
        alg, kid = signed.protected.get("alg"), signed.protected.get("kid")
        if isinstance(alg, str) and alg.lower() == "none":
            raise _refuse("unsigned tokens (alg none) are refused", "algorithm")
        if not isinstance(alg, str) or alg not in self.algorithms:
            accepted = ", ".join(sorted(self.algorithms))
            raise _refuse(
                f"token signed with an algorithm this server does not accept ({accepted} only)",
                "algorithm",
            )
        if self._jwks is None:
            keys = [k for k in self._static if k.alg == alg]
        else:
            keys = await self._jwks.keys_for(alg, kid if isinstance(kid, str) else None)
            if not keys:
                raise _refuse(
                    "token signed with a key the identity provider does not publish"
                    + (" (unknown kid)" if isinstance(kid, str) else f" for {alg}"),
                    "unknown_key",
                )
        if not any(self._signature_ok(signed, key) for key in keys):
            raise _refuse(
                "token signature is invalid (wrong key, or the token was altered)", "signature"
            )
        claims = self._claims(signed)
        self._check_claims(claims)
        return self._principal(claims)

    async def aclose(self) -> None:
        if self._jwks is not None:
            await self._jwks.aclose()

    def _parse(self, token: str) -> CompactSignature:
        if not token:
            raise _refuse("no token given", "missing")
        if len(token) > self._settings.max_token_bytes:
            raise _refuse(
                f"token too large (over {self._settings.max_token_bytes} bytes)", "too_large"
            )
        if not token.isascii() or token.count(".") != 2:
            raise _malformed()
        try:
            signed = extract_compact(token.encode("ascii"))
            if not isinstance(signed.protected, dict):
                raise _malformed()
            _HEADER_RULES.check_header(signed.protected)
        except (JoseError, ValueError, TypeError, AttributeError, KeyError) as exc:
            raise _malformed() from exc
        if "b64" in signed.protected:
            raise _refuse("tokens with an unencoded payload (b64 header) are refused", "malformed")
        return signed

    def _signature_ok(self, signed: CompactSignature, key: TrustedKey) -> bool:
        try:
            return validate_compact(signed, key.key, registry=self._registries[key.alg])
        except (JoseError, ValueError):
            return False

    def _claims(self, signed: CompactSignature) -> dict[str, Any]:
        try:
            claims = json.loads(signed.payload)
        except ValueError as exc:
            raise _refuse("malformed token: its payload is not JSON", "malformed") from exc
        if not isinstance(claims, dict):
            raise _refuse("malformed token: its payload is not a JSON object", "malformed")
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        s = self._settings
        options: dict[str, ClaimsOption] = {
            name: {"essential": True} for name in ("exp", "sub", *s.required_claims)
        }
        if s.issuer is not None:
            options["iss"] = {"essential": True, "value": s.issuer}
        if s.audience is not None:
            options["aud"] = {"essential": True, "value": s.audience}
        rules = JWTClaimsRegistry(now=int(self._clock()), leeway=s.leeway_seconds, **options)
        try:
            rules.validate(claims)
        except ExpiredTokenError as exc:
            raise _refuse("token expired: get a new one", "expired") from exc
        except MissingClaimError as exc:
            raise _refuse(f"token lacks required claims: {exc.claim}", "claims") from exc
        except ClaimError as exc:
            raise self._claim_refusal(exc.claim) from exc

    def _claim_refusal(self, claim: str) -> UnauthenticatedError:
        s = self._settings
        if claim == "iss":
            return _refuse(
                f"wrong issuer: this server accepts tokens issued by {s.issuer}", "issuer"
            )
        if claim == "aud":
            return _refuse(
                f"wrong audience: this server accepts tokens for {s.audience}", "audience"
            )
        if claim == "nbf":
            return _refuse(
                "token not valid yet (nbf is in the future): check the clocks", "not_yet_valid"
            )
        if claim == "iat":
            return _refuse("token issued in the future (iat): check the clocks", "not_yet_valid")
        return _refuse(f"token claim '{claim}' has an invalid value", "claims")

    def _principal(self, claims: dict[str, Any]) -> Principal:
        raw_roles = claims.get(self._settings.roles_claim, [])
        if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
            raise _refuse(
                f"token claim '{self._settings.roles_claim}' must be a list of role names", "roles"
            )
        roles = frozenset(role for role in map(Role.parse, raw_roles) if role is not None)
        try:
            expires_at = datetime.fromtimestamp(claims["exp"], tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise _refuse("token expiry (exp) is out of range", "claims") from exc
        return Principal(subject=claims["sub"], roles=roles, kind="token", expires_at=expires_at)


def _secret_key(secret: SecretStr) -> TrustedKey:
    raw = secret.get_secret_value().encode()
    if b"-----BEGIN" in raw:
        raise ConfigurationError(
            "KG_AUTH_JWT_SECRET holds a PEM key: put public keys in KG_AUTH_JWT_PUBLIC_KEY"
        )
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"KG_AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    try:
        return TrustedKey(HMAC_ALG, OctKey.import_key(raw, {"alg": HMAC_ALG, "use": "sig"}))
    except (JoseError, ValueError) as exc:
        raise ConfigurationError("KG_AUTH_JWT_SECRET cannot be used as an HMAC secret") from exc


def _public_keys(pem: str) -> list[TrustedKey]:
    blocks = list(_PEM_BLOCK.finditer(pem))
    if not blocks:
        raise ConfigurationError(
            "KG_AUTH_JWT_PUBLIC_KEY holds no PEM block (-----BEGIN PUBLIC KEY-----)"
        )
    return [_public_key(block.group(0).encode(), block.group(1)) for block in blocks]


def _public_key(block: bytes, label: str) -> TrustedKey:
    if "PRIVATE" in label:
        raise ConfigurationError(
            "KG_AUTH_JWT_PUBLIC_KEY holds a private key: give the public key only"
        )
    native: object
    try:
        if label == "CERTIFICATE":
            native = x509.load_pem_x509_certificate(block).public_key()
        else:
            native = load_pem_public_key(block)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigurationError(f"KG_AUTH_JWT_PUBLIC_KEY: unreadable {label} block") from exc
    if isinstance(native, rsa.RSAPublicKey) and native.key_size >= MIN_RSA_BITS:
        return TrustedKey(RSA_ALG, RSAKey.import_key(native, {"alg": RSA_ALG, "use": "sig"}))
    if isinstance(native, ec.EllipticCurvePublicKey) and isinstance(native.curve, ec.SECP256R1):
        return TrustedKey(EC_ALG, ECKey.import_key(native, {"alg": EC_ALG, "use": "sig"}))
    raise ConfigurationError(
        f"KG_AUTH_JWT_PUBLIC_KEY keys must be RSA ({MIN_RSA_BITS} bits or more) or EC P-256"
    )
