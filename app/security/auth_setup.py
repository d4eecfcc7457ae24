"""Safe defaults: which authentication mode a server runs in, and the authenticator for it.

- credentials configured (a token issuer, or ``KG_AUTH_REQUIRED=true`` for API keys
  alone): ``enforced``, on any address;
- nothing configured, bound to loopback: ``local`` (every caller is admin; said at
  start-up);
- nothing configured, bound to any other address: refused with a ``ConfigurationError``
  naming the settings, unless ``KG_AUTH_DISABLED=true`` runs it ``open`` on purpose
  (a warning at start-up).

Secrets come from the environment or from files (``*_FILE``) and are never logged.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from app.config import AuthSettings
from app.domain.errors import ConfigurationError
from app.security.api_keys import ApiKeys
from app.security.authenticate import Authenticator, AuthMode
from app.security.jwt_tokens import JwtSettings, JwtVerifier

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")

REFUSAL = (
    "refusing to serve on {host} without authentication: set KG_AUTH_JWT_SECRET, "
    "KG_AUTH_JWT_PUBLIC_KEY or KG_AUTH_JWKS_URL (or KG_AUTH_REQUIRED=true to accept API "
    "keys only; create the first admin key with `kg create-api-key --name NAME --role "
    "admin`), bind to 127.0.0.1, or set KG_AUTH_DISABLED=true to run open on purpose"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address) only accepts connections from this machine.
    Names other than localhost are not resolved: they count as reachable from outside."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def decide_mode(host: str, auth: AuthSettings) -> AuthMode:
    """The mode a server bound to ``host`` runs in; ConfigurationError when unsafe."""
    if auth.disabled:
        return "open"
    if auth.enforced:
        return "enforced"
    if is_loopback(host):
        return "local"
    raise ConfigurationError(REFUSAL.format(host=host or "all addresses"))


def jwt_settings(auth: AuthSettings) -> JwtSettings | None:
    """What the token verifier trusts, secrets read from their files; None when no token
    issuer is configured."""
    if not auth.tokens_configured:
        return None
    secret = auth.jwt_secret
    if auth.jwt_secret_file is not None:
        secret = SecretStr(_read(auth.jwt_secret_file, "KG_AUTH_JWT_SECRET_FILE"))
    public_key = auth.jwt_public_key
    if auth.jwt_public_key_file is not None:
        public_key = _read(auth.jwt_public_key_file, "KG_AUTH_JWT_PUBLIC_KEY_FILE")
    return JwtSettings(
        secret=secret,
        public_key=public_key,
        jwks_url=auth.jwks_url,
        issuer=auth.issuer,
        audience=auth.audience,
        leeway_seconds=auth.leeway_seconds,
        jwks_cache_seconds=auth.jwks_cache_seconds,
        roles_claim=auth.roles_claim,
    )


def build_authenticator(host: str, auth: AuthSettings, api_keys: ApiKeys) -> Authenticator:
    """The authenticator a server bound to ``host`` uses (see the module doc)."""
    mode = decide_mode(host, auth)
    settings = jwt_settings(auth) if mode == "enforced" else None
    tokens = JwtVerifier(settings) if settings is not None else None
    return Authenticator(mode, api_keys, tokens=tokens, open_role=auth.open_role)


def describe(mode: AuthMode, auth: AuthSettings, api_keys_url: str) -> dict[str, Any]:
    """What the start-up log says about authentication: never a secret."""
    if mode == "local":
        return {
            "mode": mode,
            "detail": "local mode: no credentials configured and bound to loopback, so every "
            "caller is admin; configure KG_AUTH_* before binding another address",
        }
    if mode == "open":
        return {
            "mode": mode,
            "role": auth.open_role.value,
            "detail": "authentication is DISABLED (KG_AUTH_DISABLED=true): every caller, from "
            f"anywhere, is {auth.open_role.value}",
        }
    tokens = (
        "hs256-secret"
        if auth.jwt_secret is not None or auth.jwt_secret_file is not None
        else "public-key"
        if auth.jwt_public_key is not None or auth.jwt_public_key_file is not None
        else "jwks"
        if auth.jwks_url is not None
        else None
    )
    return {
        "mode": mode,
        "tokens": tokens,
        "jwks_url": auth.jwks_url,
        "issuer": auth.issuer,
        "audience": auth.audience,
        "api_keys": api_keys_url,
    }


def _read(path: Path, variable: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{variable}: cannot read {path} ({type(exc).__name__})") from exc
    if not text:
        raise ConfigurationError(f"{variable}: {path} is empty")
    return text
