"""Authentication settings and safe defaults: flat KG_AUTH_* variables, secrets from
files, contradictions refused, and the mode a bind address gets (local on loopback,
refused elsewhere unless configured or disabled on purpose)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from app.adapters.sqlite_api_key_store import SqliteApiKeyStore
from app.config import AuthSettings, load_settings
from app.domain.auth import Role
from app.domain.errors import ConfigurationError
from app.security.api_keys import ApiKeys
from app.security.auth_setup import (
    build_authenticator,
    decide_mode,
    describe,
    is_loopback,
    jwt_settings,
)

SECRET = "a-test-only-hmac-secret-of-forty-chars!!"
AUTH_VARS = (
    "KG_AUTH_JWT_SECRET",
    "KG_AUTH_JWT_SECRET_FILE",
    "KG_AUTH_JWT_PUBLIC_KEY",
    "KG_AUTH_JWT_PUBLIC_KEY_FILE",
    "KG_AUTH_JWKS_URL",
    "KG_AUTH_ISSUER",
    "KG_AUTH_AUDIENCE",
    "KG_AUTH_REQUIRED",
    "KG_AUTH_DISABLED",
    "KG_AUTH_OPEN_ROLE",
    "KG_AUTH_API_KEYS_URL",
    "KG_JOBS_URL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in AUTH_VARS:
        monkeypatch.delenv(var, raising=False)


def test_nothing_configured_by_default() -> None:
    auth = load_settings().auth
    assert not auth.tokens_configured and not auth.enforced
    assert not auth.disabled and auth.open_role is Role.ADMIN
    assert load_settings().introspection is True


def test_flat_variables_as_the_issue_names_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KG_AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("KG_AUTH_ISSUER", "https://idp.test/")
    monkeypatch.setenv("KG_AUTH_AUDIENCE", "kg-api")
    monkeypatch.setenv("KG_AUTH_SESSION_CHECK_SECONDS", "0.5")
    auth = load_settings().auth
    assert isinstance(auth.jwt_secret, SecretStr)
    assert auth.jwt_secret.get_secret_value() == SECRET
    assert SECRET not in repr(auth) and SECRET not in str(load_settings())
    assert (auth.issuer, auth.audience, auth.session_check_seconds) == (
        "https://idp.test/",
        "kg-api",
        0.5,
    )
    assert auth.tokens_configured and auth.enforced


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KG_AUTH_JWT_SECRET", "")
    monkeypatch.setenv("KG_AUTH_DISABLED", "")
    assert not load_settings().auth.enforced


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"KG_AUTH_LEEWAY_SECONDS": "-1"}, "KG_AUTH_LEEWAY_SECONDS"),
        ({"KG_AUTH_OPEN_ROLE": "superuser"}, "KG_AUTH_OPEN_ROLE"),
        ({"KG_AUTH_JWKS_URL": "ftp://idp.test/keys"}, "KG_AUTH_JWKS_URL"),
        ({"KG_AUTH_API_KEYS_URL": "postgres://db"}, "KG_AUTH_API_KEYS_URL"),
        ({"KG_AUTH_SESSION_CHECK_SECONDS": "0"}, "KG_AUTH_SESSION_CHECK_SECONDS"),
        (
            {"KG_AUTH_JWT_SECRET": SECRET, "KG_AUTH_JWKS_URL": "https://idp.test/jwks"},
            "KG_AUTH_JWT_SECRET and KG_AUTH_JWKS_URL",
        ),
        (
            {"KG_AUTH_DISABLED": "true", "KG_AUTH_JWT_SECRET": SECRET},
            "KG_AUTH_DISABLED=true contradicts KG_AUTH_JWT_SECRET",
        ),
        (
            {"KG_AUTH_DISABLED": "true", "KG_AUTH_REQUIRED": "true"},
            "KG_AUTH_DISABLED=true contradicts KG_AUTH_REQUIRED",
        ),
    ],
)
def test_bad_auth_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert says in caught.value.message
    assert SECRET not in caught.value.message


def test_api_keys_live_beside_the_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().api_keys_url == "sqlite://"
    monkeypatch.setenv("KG_JOBS_URL", "redis://127.0.0.1:6394/3")
    assert load_settings().api_keys_url == "redis://127.0.0.1:6394/3"
    monkeypatch.setenv("KG_AUTH_API_KEYS_URL", "sqlite:///tmp/elsewhere.sqlite3")
    assert load_settings().api_keys_url == "sqlite:///tmp/elsewhere.sqlite3"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.20", False),
        ("10.0.0.1", False),
        ("kg.example.com", False),
        ("localhost.evil.test", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_without_credentials_is_local_mode() -> None:
    assert decide_mode("127.0.0.1", AuthSettings()) == "local"
    assert decide_mode("::1", AuthSettings()) == "local"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "kg.example.com", ""])
def test_other_addresses_without_credentials_are_refused(host: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        decide_mode(host, AuthSettings())
    message = caught.value.message
    assert message.startswith("refusing to serve on")
    for setting in ("KG_AUTH_JWT_SECRET", "KG_AUTH_JWKS_URL", "KG_AUTH_DISABLED=true"):
        assert setting in message
    assert "kg create-api-key" in message


def test_configured_or_disabled_runs_anywhere() -> None:
    secret = AuthSettings(jwt_secret=SecretStr(SECRET))
    assert decide_mode("0.0.0.0", secret) == decide_mode("127.0.0.1", secret) == "enforced"
    assert decide_mode("0.0.0.0", AuthSettings(required=True)) == "enforced"
    assert decide_mode("0.0.0.0", AuthSettings(disabled=True)) == "open"


def test_secrets_and_keys_from_files(tmp_path: Path) -> None:
    secret_file = tmp_path / "jwt-secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")  # a trailing newline is common
    jwt = jwt_settings(AuthSettings(jwt_secret_file=secret_file, issuer="iss", audience="aud"))
    assert jwt is not None and jwt.secret is not None
    assert jwt.secret.get_secret_value() == SECRET
    assert (jwt.issuer, jwt.audience, jwt.public_key, jwt.jwks_url) == ("iss", "aud", None, None)
    pem_file = tmp_path / "public.pem"
    pem_file.write_text("-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n")
    jwt = jwt_settings(AuthSettings(jwt_public_key_file=pem_file))
    assert jwt is not None and jwt.public_key is not None and jwt.secret is None
    assert jwt.public_key.startswith("-----BEGIN PUBLIC KEY-----")
    assert jwt_settings(AuthSettings(required=True)) is None


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_unreadable_or_empty_secret_files_are_refused(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        jwt_settings(AuthSettings(jwt_secret_file=path))
    assert "KG_AUTH_JWT_SECRET_FILE" in caught.value.message


def test_a_weak_secret_stops_start_up(tmp_path: Path) -> None:
    keys = ApiKeys(SqliteApiKeyStore(tmp_path / "keys.sqlite3"))
    with pytest.raises(ConfigurationError) as caught:
        build_authenticator("0.0.0.0", AuthSettings(jwt_secret=SecretStr("short")), keys)
    assert "at least 32 bytes" in caught.value.message


def test_start_up_description_never_holds_a_secret() -> None:
    auth = AuthSettings(jwt_secret=SecretStr(SECRET), issuer="iss")
    described = describe("enforced", auth, "redis://:hunter2@redis:6379/0")
    assert described["tokens"] == "hs256-secret" and described["issuer"] == "iss"
    assert SECRET not in repr(described)
    local = describe("local", AuthSettings(), "sqlite://")
    assert local["mode"] == "local" and "every caller is admin" in local["detail"]
    opened = describe("open", AuthSettings(disabled=True, open_role=Role.READER), "sqlite://")
    assert opened["role"] == "reader" and "DISABLED" in opened["detail"]
