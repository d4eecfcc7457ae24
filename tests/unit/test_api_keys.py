"""The ApiKeys service over the real SQLite store: secrets shown once, stored only as
salted digests, verified in constant time, revoked for good."""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import app.security.api_keys as api_keys_module
from app.adapters.sqlite_api_key_store import SqliteApiKeyStore
from app.domain.auth import Principal, Role
from app.domain.errors import (
    BadInputError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnauthenticatedError,
    UnavailableError,
)
from app.security.api_keys import ApiKeys, digest_of

ADMIN = Principal(subject="user:root", roles=frozenset({Role.ADMIN}), kind="token")
WRITER = Principal(subject="user:w", roles=frozenset({Role.WRITER}), kind="token")
READER = Principal(subject="user:r", roles=frozenset({Role.READER}), kind="api_key")
SECRET_SHAPE = re.compile(r"kg_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def token_of(secret: str) -> str:
    """The random part of a secret (it may itself hold ``_``)."""
    match = SECRET_SHAPE.fullmatch(secret)
    assert match is not None
    return match[2]


class Clock:
    """A settable clock, so revocation times are known."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "api_keys.sqlite3"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteApiKeyStore]:
    store = SqliteApiKeyStore(db_path)
    await store.start()
    yield store
    await store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(store: SqliteApiKeyStore, clock: Clock) -> ApiKeys:
    return ApiKeys(store, clock=clock)


async def test_create_returns_the_key_and_a_secret_of_the_documented_shape(
    keys: ApiKeys, store: SqliteApiKeyStore, clock: Clock
) -> None:
    key, secret = await keys.create("  CI pipeline ", Role.WRITER, ADMIN)
    match = SECRET_SHAPE.fullmatch(secret)
    assert match is not None
    assert match[1] == key.id
    assert key.name == "CI pipeline"  # surrounding spaces dropped
    assert key.role is Role.WRITER
    assert key.created_by == "user:root"
    assert key.created_at == clock.now
    assert key.active
    stored = await store.get(key.id)
    assert stored is not None
    assert stored.key == key
    assert len(stored.salt) == 16
    assert stored.digest == digest_of(stored.salt, secret)


async def test_every_key_gets_its_own_id_secret_and_salt(
    keys: ApiKeys, store: SqliteApiKeyStore
) -> None:
    made = [await keys.create(f"key {i}", Role.READER, ADMIN) for i in range(5)]
    assert len({key.id for key, _ in made}) == 5
    assert len({secret for _, secret in made}) == 5
    salts = set()
    for key, _ in made:
        stored = await store.get(key.id)
        assert stored is not None
        salts.add(stored.salt)
    assert len(salts) == 5


async def test_the_secret_is_shown_once_and_never_stored(keys: ApiKeys, db_path: Path) -> None:
    key, secret = await keys.create("shown once", Role.ADMIN, ADMIN)
    token = token_of(secret)
    listed = await keys.list(include_revoked=True)
    assert listed == [key]
    assert secret not in repr(listed)

    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
    finally:
        conn.close()
    assert len(rows) == 1
    for value in rows[0]:
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        assert token not in text and secret not in text
        if isinstance(value, bytes):
            assert secret.encode() not in value
    # Nor anywhere in the files on disk (the database and its write-ahead log).
    for path in db_path.parent.glob(db_path.name + "*"):
        assert token.encode() not in path.read_bytes(), path.name


async def test_verify_gives_the_principal_of_the_key(keys: ApiKeys) -> None:
    key, secret = await keys.create("reader bot", Role.READER, ADMIN)
    principal = await keys.verify(secret)
    assert principal == Principal(
        subject=f"api-key:{key.id}",
        roles=frozenset({Role.READER}),
        kind="api_key",
        expires_at=None,
        key_id=key.id,
    )


@pytest.mark.parametrize("role", list(Role))
async def test_the_role_is_carried_into_the_principal(keys: ApiKeys, role: Role) -> None:
    _, secret = await keys.create(f"{role} key", role, ADMIN)
    principal = await keys.verify(secret)
    assert principal.roles == frozenset({role})
    assert principal.role is role
    assert principal.may(role)
    assert principal.may(Role.ADMIN) is (role is Role.ADMIN)


def _errors_hide(caught: pytest.ExceptionInfo[UnauthenticatedError], secret: str) -> None:
    error = caught.value
    shown = f"{error} {error.message} {error.details!r} {error.args!r}"
    assert secret not in shown
    assert token_of(secret) not in shown


async def test_a_wrong_secret_for_a_real_id_is_refused(keys: ApiKeys) -> None:
    key, secret = await keys.create("victim", Role.ADMIN, ADMIN)
    token = token_of(secret)
    flipped = ("A" if token[0] != "A" else "B") + token[1:]
    wrong = f"kg_{key.id}_{flipped}"
    with pytest.raises(UnauthenticatedError, match="invalid API key") as caught:
        await keys.verify(wrong)
    _errors_hide(caught, wrong)


async def test_a_tampered_id_is_refused(keys: ApiKeys) -> None:
    key, secret = await keys.create("victim", Role.ADMIN, ADMIN)
    other, other_secret = await keys.create("other", Role.READER, ADMIN)
    token = token_of(secret)
    flipped_id = ("0" if key.id[0] != "0" else "1") + key.id[1:]
    for tampered in (
        f"kg_{flipped_id}_{token}",  # an id nobody has
        f"kg_{other.id}_{token}",  # someone else's id with this key's token
        f"kg_{key.id}_{token_of(other_secret)}",  # and the other way round
    ):
        with pytest.raises(UnauthenticatedError, match="invalid API key") as caught:
            await keys.verify(tampered)
        _errors_hide(caught, tampered)
    assert (await keys.verify(secret)).key_id == key.id


async def test_unknown_ids_and_wrong_secrets_cost_one_digest_each(
    keys: ApiKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same work either way: an unknown id is hashed against the dummy salt."""
    key, secret = await keys.create("timed", Role.READER, ADMIN)
    calls: list[bytes] = []
    real = api_keys_module.digest_of

    def counted(salt: bytes, text: str) -> bytes:
        calls.append(salt)
        return real(salt, text)

    monkeypatch.setattr(api_keys_module, "digest_of", counted)
    token = token_of(secret)
    unknown_id = "f" * 16 if key.id != "f" * 16 else "e" * 16
    for presented in (f"kg_{key.id}_{'A' * 43}", f"kg_{unknown_id}_{token}"):
        calls.clear()
        with pytest.raises(UnauthenticatedError, match="invalid API key"):
            await keys.verify(presented)
        assert len(calls) == 1 and len(calls[0]) == 16
    calls.clear()
    await keys.verify(secret)
    assert len(calls) == 1


async def test_a_revoked_key_is_refused_as_revoked(keys: ApiKeys, clock: Clock) -> None:
    key, secret = await keys.create("leaked", Role.WRITER, ADMIN)
    clock.now += timedelta(minutes=5)
    revoked = await keys.revoke(key.id, ADMIN)
    assert revoked.revoked_at == clock.now and not revoked.active
    with pytest.raises(UnauthenticatedError, match="API key revoked") as caught:
        await keys.verify(secret)
    _errors_hide(caught, secret)
    # Without the secret, nobody learns that the key exists or was revoked.
    with pytest.raises(UnauthenticatedError, match="invalid API key"):
        await keys.verify(f"kg_{key.id}_{'A' * 43}")


async def test_revoking_twice_keeps_the_first_time(keys: ApiKeys, clock: Clock) -> None:
    key, _ = await keys.create("twice", Role.READER, ADMIN)
    first_time = clock.now + timedelta(minutes=1)
    clock.now = first_time
    first = await keys.revoke(key.id, ADMIN)
    clock.now += timedelta(hours=1)
    second = await keys.revoke(key.id, ADMIN)
    assert first.revoked_at == second.revoked_at == first_time
    assert await keys.revoked_since(first_time) == [key.id]
    assert await keys.revoked_since(first_time + timedelta(microseconds=1)) == []


async def test_revoking_an_unknown_key_is_not_found(keys: ApiKeys) -> None:
    with pytest.raises(NotFoundError, match="0123456789abcdef"):
        await keys.revoke("0123456789abcdef", ADMIN)


async def test_revoking_with_something_that_is_no_id_does_not_echo_it(keys: ApiKeys) -> None:
    """An admin may paste a whole secret where the id goes: it must not come back."""
    _, secret = await keys.create("pasted", Role.READER, ADMIN)
    for bad in (secret, "", "0123456789ABCDEF", "x" * 10_000):
        with pytest.raises(NotFoundError) as caught:
            await keys.revoke(bad, ADMIN)
        assert secret not in str(caught.value) and not caught.value.details
    assert (await keys.verify(secret)).kind == "api_key"  # nothing was revoked


async def test_list_shows_active_keys_unless_asked_for_all(keys: ApiKeys, clock: Clock) -> None:
    first, _ = await keys.create("first", Role.READER, ADMIN)
    clock.now += timedelta(seconds=1)
    second, _ = await keys.create("second", Role.WRITER, ADMIN)
    clock.now += timedelta(seconds=1)
    revoked = await keys.revoke(first.id, ADMIN)
    assert await keys.list() == [second]
    assert await keys.list(include_revoked=True) == [revoked, second]


@pytest.mark.parametrize("who", [WRITER, READER])
async def test_only_admins_create_and_revoke(keys: ApiKeys, who: Principal) -> None:
    key, _ = await keys.create("admin made", Role.READER, ADMIN)
    with pytest.raises(ForbiddenError):
        await keys.create("self-service", Role.READER, who)
    with pytest.raises(ForbiddenError):
        await keys.revoke(key.id, who)
    assert await keys.list(include_revoked=True) == [key]


async def test_a_key_minted_by_an_admin_key_names_it_as_creator(keys: ApiKeys) -> None:
    _, admin_secret = await keys.create("admin key", Role.ADMIN, ADMIN)
    admin_key = await keys.verify(admin_secret)
    child, _ = await keys.create("made by a key", Role.READER, admin_key)
    assert child.created_by == admin_key.subject


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "x" * 101,
        " " + "y" * 101 + " ",
        "line\nbreak",
        "tab\there",
        "nul\x00",
        "bell\x07",
        "lone \ud800 surrogate",
        "zero\u200bwidth",
        "rtl \u202e override",
        None,
        42,
    ],
)
async def test_bad_names_are_refused(keys: ApiKeys, name: Any) -> None:
    with pytest.raises(BadInputError):
        await keys.create(name, Role.READER, ADMIN)
    assert await keys.list(include_revoked=True) == []


@pytest.mark.parametrize(
    "name", ["a", "x" * 100, "Zürich ingest 東京 🚀", "ключ", 'it\'s "quoted" & <ok>']
)
async def test_good_names_are_kept(keys: ApiKeys, name: str) -> None:
    key, secret = await keys.create(name, Role.READER, ADMIN)
    assert key.name == name
    assert (await keys.list())[0].name == name
    assert (await keys.verify(secret)).key_id == key.id


async def test_an_unknown_role_is_refused(keys: ApiKeys) -> None:
    bad: Any = "superuser"
    with pytest.raises(BadInputError, match="role"):
        await keys.create("x", bad, ADMIN)


def _malformed(secret: str) -> Iterator[Any]:
    key_id, token = SECRET_SHAPE.fullmatch(secret).groups()  # type: ignore[union-attr]
    yield from (
        "",
        "kg_",
        "kg",
        "kg__",
        token,
        key_id,
        f"kg_{key_id}",
        f"kg_{key_id}_",
        f"kg_{key_id}{token}",
        f"KG_{key_id}_{token}",
        f"kx_{key_id}_{token}",
        f"kg-{key_id}-{token}",
        f"kg_{key_id.upper()}_{token}" if key_id.upper() != key_id else f"kg_{key_id}G_{token}",
        f"kg_{key_id[:-1]}_{token}",
        f"kg_{key_id}0_{token}",
        f"kg_{key_id}_{token[:-1]}",
        f"kg_{key_id}_{token}A",
        f"kg_{key_id}_{token[:-1]}=",
        f"kg_{key_id}_{token[:-1]}+",
        f"kg_{key_id}_{token[:-1]}é",
        f"kg_{key_id[:-1]}é_{token}",
        f" {secret}",
        f"{secret} ",
        f"{secret}\n",
        f"Bearer {secret}",
        f"{secret}\x00",
        secret + secret,
        "kg_" + "0" * 16 + "_" + "A" * 10_000,
        "\ud800" * 63,
        None,
        b"kg_0123456789abcdef_" + b"A" * 43,
        12345,
    )


async def test_malformed_secrets_of_many_shapes_are_refused(keys: ApiKeys) -> None:
    _, secret = await keys.create("real", Role.ADMIN, ADMIN)
    count = 0
    for bad in _malformed(secret):
        count += 1
        with pytest.raises(UnauthenticatedError) as caught:
            await keys.verify(bad)
        assert caught.value.message in ("malformed API key", "invalid API key"), repr(bad)
        if isinstance(bad, str) and bad:
            assert bad not in str(caught.value)
    assert count > 30
    assert (await keys.verify(secret)).role is Role.ADMIN  # the real one still works


async def test_an_id_collision_is_retried_with_a_fresh_id(
    keys: ApiKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken, _ = await keys.create("first", Role.READER, ADMIN)
    real = secrets.token_hex
    handed: list[str] = []

    def token_hex(nbytes: int) -> str:
        value = taken.id if not handed else real(nbytes)
        handed.append(value)
        return value

    monkeypatch.setattr(secrets, "token_hex", token_hex)
    key, secret = await keys.create("second", Role.READER, ADMIN)
    assert handed[0] == taken.id and key.id == handed[1] != taken.id
    assert (await keys.verify(secret)).key_id == key.id


async def test_collisions_every_time_end_in_a_conflict(
    keys: ApiKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken, _ = await keys.create("first", Role.READER, ADMIN)
    monkeypatch.setattr(secrets, "token_hex", lambda nbytes: taken.id)
    with pytest.raises(ConflictError):
        await keys.create("second", Role.READER, ADMIN)
    assert await keys.list() == [taken]


async def test_a_store_that_is_down_is_unavailable_not_unauthenticated(
    keys: ApiKeys, store: SqliteApiKeyStore
) -> None:
    """A backend outage must not read as a bad credential (clients would drop the key)."""
    _, secret = await keys.create("outage", Role.READER, ADMIN)
    await store.close()
    with pytest.raises(UnavailableError):
        await keys.verify(secret)


async def test_keys_verify_after_a_restart(
    db_path: Path, keys: ApiKeys, store: SqliteApiKeyStore
) -> None:
    key, secret = await keys.create("durable", Role.WRITER, ADMIN)
    await store.close()
    reopened = SqliteApiKeyStore(db_path)
    await reopened.start()
    try:
        principal = await ApiKeys(reopened).verify(secret)
        assert principal.key_id == key.id and principal.roles == frozenset({Role.WRITER})
    finally:
        await reopened.close()
