"""From presented credentials to principals: header and connection_init forms, bad forms
refused (never guessed at), and each mode (local, open, enforced) with real API keys in
SQLite and real HS256 tokens."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from pydantic import SecretStr

from app.adapters.sqlite_api_key_store import SqliteApiKeyStore
from app.domain.auth import Principal, Role
from app.domain.errors import UnauthenticatedError
from app.security.api_keys import ApiKeys
from app.security.authenticate import (
    LOCAL_PRINCIPAL,
    Authenticator,
    credential_from_headers,
    credential_from_params,
)
from app.security.jwt_tokens import JwtSettings, JwtVerifier

SECRET = "a-test-only-hmac-secret-of-forty-chars!!"
ADMIN = Principal(subject="test-admin", roles=frozenset({Role.ADMIN}), kind="token")


def token(**overrides: Any) -> str:
    claims = {"sub": "user-1", "exp": int(time.time()) + 600, "roles": ["writer"], **overrides}
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(SECRET), algorithms=["HS256"])


@pytest.fixture
async def api_keys(tmp_path: Path) -> AsyncIterator[ApiKeys]:
    store = SqliteApiKeyStore(tmp_path / "keys.sqlite3")
    await store.start()
    try:
        yield ApiKeys(store)
    finally:
        await store.close()


def enforced(api_keys: ApiKeys, tokens: bool = True) -> Authenticator:
    verifier = JwtVerifier(JwtSettings(secret=SecretStr(SECRET))) if tokens else None
    return Authenticator("enforced", api_keys, tokens=verifier)


# --- credential forms -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "credential"),
    [
        ({}, None),
        ({"authorization": "Bearer abc.def.ghi"}, "abc.def.ghi"),
        ({"authorization": "bearer   abc.def.ghi  "}, "abc.def.ghi"),
        ({"x-api-key": " kg_key "}, "kg_key"),
        ({"x-api-key": ""}, None),
        ({"authorization": "Bearer kg_key", "x-api-key": "kg_key"}, "kg_key"),
    ],
)
def test_header_forms(headers: dict[str, str], credential: str | None) -> None:
    assert credential_from_headers(headers) == credential


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({"authorization": "Basic dXNlcjpwYXNz"}, "must read 'Bearer"),
        ({"authorization": "Bearer"}, "must read 'Bearer"),
        ({"authorization": "Bearer    "}, "must read 'Bearer"),
        ({"authorization": "abc.def.ghi"}, "must read 'Bearer"),
        ({"authorization": "Bearer one", "x-api-key": "two"}, "two different credentials"),
        ({"authorization": "Bearer " + "x" * 20_000}, "too long"),
    ],
)
def test_bad_header_forms_are_refused(headers: dict[str, str], says: str) -> None:
    with pytest.raises(UnauthenticatedError) as caught:
        credential_from_headers(headers)
    assert says in caught.value.message
    assert "dXNlcjpwYXNz" not in caught.value.message


@pytest.mark.parametrize(
    ("params", "credential"),
    [
        ({}, None),
        ({"Authorization": "Bearer t.o.k"}, "t.o.k"),
        ({"authorization": "Bearer t.o.k"}, "t.o.k"),
        ({"apiKey": "kg_key"}, "kg_key"),
        ({"headers": {"Authorization": "Bearer t.o.k"}}, "t.o.k"),
        ({"headers": {"X-API-Key": "kg_key"}}, "kg_key"),
        ({"apiKey": "kg_key", "headers": {"authorization": "Bearer kg_key"}}, "kg_key"),
        ({"other": 1}, None),
    ],
)
def test_connection_init_forms(params: dict[str, object], credential: str | None) -> None:
    assert credential_from_params(params) == credential


@pytest.mark.parametrize(
    "params",
    [
        {"Authorization": 42},
        {"apiKey": ["kg_key"]},
        {"Authorization": "Token t.o.k"},
        {"apiKey": "kg_one", "Authorization": "Bearer t.o.k"},
    ],
)
def test_bad_connection_init_forms_are_refused(params: dict[str, object]) -> None:
    with pytest.raises(UnauthenticatedError):
        credential_from_params(params)


# --- modes ------------------------------------------------------------------------------


async def test_local_mode_is_admin_whatever_is_sent(api_keys: ApiKeys) -> None:
    auth = Authenticator("local", api_keys)
    assert await auth.from_headers({}) is LOCAL_PRINCIPAL
    assert await auth.from_headers({"authorization": "Basic garbage"}) is LOCAL_PRINCIPAL
    assert await auth.from_connection_params(None) is LOCAL_PRINCIPAL
    assert LOCAL_PRINCIPAL.may(Role.ADMIN) and LOCAL_PRINCIPAL.kind == "local"


async def test_open_mode_gives_the_open_role(api_keys: ApiKeys) -> None:
    auth = Authenticator("open", api_keys, open_role=Role.READER)
    principal = await auth.from_headers({"authorization": "Bearer whatever"})
    assert principal.kind == "open" and principal.roles == frozenset({Role.READER})
    assert not principal.may(Role.WRITER)


async def test_enforced_mode_needs_a_credential(api_keys: ApiKeys) -> None:
    with pytest.raises(UnauthenticatedError) as caught:
        await enforced(api_keys).from_headers({})
    assert caught.value.details["reason"] == "missing"
    assert "Authorization: Bearer" in caught.value.message
    with pytest.raises(UnauthenticatedError):
        await enforced(api_keys).from_connection_params({})


async def test_enforced_mode_takes_tokens_and_api_keys(api_keys: ApiKeys) -> None:
    auth = enforced(api_keys)
    by_token = await auth.from_headers({"authorization": f"Bearer {token()}"})
    assert (by_token.kind, by_token.subject, by_token.roles) == (
        "token",
        "user-1",
        frozenset({Role.WRITER}),
    )
    assert by_token.expires_at is not None
    key, secret = await api_keys.create("script", Role.READER, ADMIN)
    for headers in ({"authorization": f"Bearer {secret}"}, {"x-api-key": secret}):
        by_key = await auth.from_headers(headers)
        assert (by_key.kind, by_key.key_id, by_key.roles) == (
            "api_key",
            key.id,
            frozenset({Role.READER}),
        )
    by_ws = await auth.from_connection_params({"apiKey": secret})
    assert by_ws.key_id == key.id


async def test_bad_credentials_are_refused(api_keys: ApiKeys) -> None:
    auth = enforced(api_keys)
    key, secret = await api_keys.create("script", Role.READER, ADMIN)
    await api_keys.revoke(key.id, ADMIN)
    bad = [
        secret,  # revoked
        "kg_0123456789abcdef_" + "A" * 43,  # unknown key
        "kg_garbage",
        token(exp=int(time.time()) - 3600),  # expired
        token()[:-4] + "AAAA",  # tampered signature
        "not-a-token",
    ]
    for credential in bad:
        with pytest.raises(UnauthenticatedError) as caught:
            await auth.from_headers({"authorization": f"Bearer {credential}"})
        assert credential not in caught.value.message


async def test_api_keys_only_refuses_tokens_clearly(api_keys: ApiKeys) -> None:
    with pytest.raises(UnauthenticatedError) as caught:
        await enforced(api_keys, tokens=False).from_headers({"authorization": f"Bearer {token()}"})
    assert "API keys only" in caught.value.message
