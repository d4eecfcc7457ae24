"""Authentication and roles through the real app served by uvicorn (HTTP and WebSocket),
in enforced mode with an HS256 secret, an issuer and an audience.

The backends the API needs here (graph, jobs, API keys, bus) are started; the models are
not (nothing here embeds or extracts). Bad tokens of every kind are refused over HTTP
and in connection_init; the roles matrix holds; a key's secret is shown once; a revoked
key is refused, and closes a live subscription (in this process, and in another process
sharing the key store); an expiring token closes its live subscription; and neither
secret nor token ever reaches the logs."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
import websockets
from joserfc import jwt
from joserfc.jwk import OctKey
from starlette.applications import Starlette

from app.config import Settings, load_settings
from app.container import Container, build_container
from app.observability.logging import configure_logging
from app.server import create_app
from tests.support.live_server import free_port

SECRET = "integration-only-hmac-secret-0123456789abcdef"
OTHER_SECRET = "some-other-hmac-secret-nobody-configured-0123"
ISSUER = "https://idp.kg.test/"
AUDIENCE = "kg-api"
TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
EVENTS = "subscription { ingestionEvents { jobId status } }"
INGEST = """mutation($title: String!) {
  ingestDocument(input: {title: $title, text: "Ada Lovelace wrote notes."}) { id status }
}"""
CREATE_KEY = """mutation($name: String!, $role: Role!) {
  createApiKey(name: $name, role: $role) { secret key { id name role active createdBy } }
}"""
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) { id active revokedAt } }"
LIST_KEYS = "query($all: Boolean!) { apiKeys(includeRevoked: $all) { id name role active } }"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(
    roles: list[str] | None = None,
    *,
    secret: str = SECRET,
    alg: str = "HS256",
    expires_in: float = 600,
    **claims: Any,
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": "user-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + expires_in,
        "roles": ["reader"] if roles is None else roles,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": alg}, body, OctKey.import_key(secret), algorithms=[alg])


def tampered() -> str:
    """A reader's token whose payload now says admin, with the reader's signature."""
    header, _, signature = token(["reader"]).split(".")
    payload = json.loads(base64.urlsafe_b64decode(token(["admin"]).split(".")[1] + "=="))
    return f"{header}.{b64(json.dumps(payload).encode())}.{signature}"


def unsigned() -> str:
    now = int(time.time())
    body = {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": now + 600, "roles": ["admin"]}
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(body).encode())}."


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "expired": lambda: token(expires_in=-3600),
    "wrong issuer": lambda: token(iss="https://evil.test/"),
    "wrong audience": lambda: token(aud="another-api"),
    "wrong key": lambda: token(secret=OTHER_SECRET),
    "tampered": tampered,
    "none algorithm": unsigned,
    "other algorithm": lambda: token(alg="HS512"),
    "not yet valid": lambda: token(nbf=int(time.time()) + 3600),
    "no expiry": lambda: token(exp=None),
    "garbage": lambda: "garbage",
    "three garbage parts": lambda: "a.b.c",
}


# --- one served app (and a second one sharing its key store) ---------------------------


@dataclass
class Served:
    settings: Settings
    app: Starlette
    container: Container
    base: str

    @property
    def graphql(self) -> str:
        return f"{self.base}/graphql"

    @property
    def ws(self) -> str:
        return self.graphql.replace("http://", "ws://")


@asynccontextmanager
async def served(data_dir: Path, keys_file: Path) -> AsyncIterator[Served]:
    settings = load_settings(
        data_dir=data_dir,
        auth={
            "jwt_secret": SECRET,
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "api_keys_url": f"sqlite://{keys_file}",
            "session_check_seconds": 0.2,
        },
    )
    container = build_container(settings)
    app = create_app(settings, container)
    started: list[Any] = [container.graph, container.jobs, container.api_key_store, container.bus]
    for component in started:
        await component.start()
    watcher = asyncio.create_task(app.state.sessions.run())
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        ws="websockets-sansio",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "uvicorn stopped at start-up"
            await asyncio.sleep(0.02)
        yield Served(settings, app, container, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await app.state.auth.aclose()
        for component in reversed(started):
            await component.close()


@pytest.fixture(scope="module")
def logs() -> Iterator[io.StringIO]:
    """Every log line of this module, as JSON, to look for leaked secrets."""
    root = logging.getLogger()
    saved_level = root.level
    buffer = io.StringIO()
    configure_logging("DEBUG", json=True, stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        if handler.__class__.__name__ == "_KGHandler":
            root.removeHandler(handler)
    root.setLevel(saved_level)
    structlog.reset_defaults()


@pytest.fixture(scope="module")
async def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "api_keys.sqlite3"


@pytest.fixture(scope="module")
async def kg(
    tmp_path_factory: pytest.TempPathFactory, keys_file: Path, logs: io.StringIO
) -> AsyncIterator[Served]:
    async with served(tmp_path_factory.mktemp("kg-auth"), keys_file) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def call(
    http: httpx.AsyncClient,
    kg: Served,
    query: str,
    variables: dict[str, Any] | None = None,
    credential: str | None = None,
    header: str = "Authorization",
) -> tuple[httpx.Response, dict[str, Any]]:
    headers = {}
    if credential is not None:
        headers[header] = f"Bearer {credential}" if header == "Authorization" else credential
    response = await http.post(
        kg.graphql, json={"query": query, "variables": variables or {}}, headers=headers
    )
    return response, response.json()


def codes(body: dict[str, Any]) -> list[Any]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


async def new_key(http: httpx.AsyncClient, kg: Served, role: str, name: str) -> tuple[str, str]:
    _, body = await call(http, kg, CREATE_KEY, {"name": name, "role": role}, token(["admin"]))
    assert not body.get("errors"), body
    created = body["data"]["createApiKey"]
    return created["key"]["id"], created["secret"]


# --- HTTP -------------------------------------------------------------------------------


async def test_no_credential_is_unauthenticated(http: httpx.AsyncClient, kg: Served) -> None:
    response, body = await call(http, kg, "{ stats { documents } }")
    assert response.status_code == 200
    assert codes(body) == ["UNAUTHENTICATED"] and body["data"] is None
    assert "Authorization: Bearer" in body["errors"][0]["message"]
    assert response.headers["www-authenticate"] == 'Bearer realm="kg"'
    _, typename = await call(http, kg, "{ __typename }")
    assert typename == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_tokens_are_unauthenticated(
    http: httpx.AsyncClient, kg: Served, kind: str
) -> None:
    bad = BAD_TOKENS[kind]()
    response, body = await call(http, kg, "{ stats { documents } }", credential=bad)
    assert codes(body) == ["UNAUTHENTICATED"], (kind, body)
    assert body["data"] is None
    assert response.headers["www-authenticate"] == 'Bearer realm="kg", error="invalid_token"'
    message = body["errors"][0]["message"]
    assert all(part not in message for part in bad.split(".") if len(part) > 8)


async def test_wrong_authorization_scheme_is_unauthenticated(
    http: httpx.AsyncClient, kg: Served
) -> None:
    response = await http.post(
        kg.graphql,
        json={"query": "{ stats { documents } }"},
        headers={"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
    )
    assert codes(response.json()) == ["UNAUTHENTICATED"]
    assert "Bearer" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("roles", "outcome"),
    [
        (["reader"], {"read": None, "write": "FORBIDDEN", "keys": "FORBIDDEN"}),
        (["writer"], {"read": None, "write": "BAD_USER_INPUT", "keys": "FORBIDDEN"}),
        (["admin"], {"read": None, "write": "BAD_USER_INPUT", "keys": None}),
        (["Reader", "writer"], {"read": None, "write": "BAD_USER_INPUT", "keys": "FORBIDDEN"}),
        ([], {"read": "FORBIDDEN", "write": "FORBIDDEN", "keys": "FORBIDDEN"}),
        (["superuser"], {"read": "FORBIDDEN", "write": "FORBIDDEN", "keys": "FORBIDDEN"}),
    ],
)
async def test_roles_matrix(
    http: httpx.AsyncClient, kg: Served, roles: list[str], outcome: dict[str, str | None]
) -> None:
    """A writer gets past the check of deleteDocument (and then BAD_USER_INPUT for the
    made-up id): the check came first and let it through."""
    credential = token(roles)
    operations = {
        "read": ("{ stats { documents } }", {}),
        "write": ('mutation { deleteDocument(id: "nope") { id } }', {}),
        "keys": (LIST_KEYS, {"all": False}),
    }
    for name, (query, variables) in operations.items():
        _, body = await call(http, kg, query, variables, credential)
        expected = [] if outcome[name] is None else [outcome[name]]
        assert codes(body) == expected, (roles, name, body)
        if outcome[name] == "FORBIDDEN":
            assert "role" in body["errors"][0]["message"]


async def test_a_reader_cannot_ingest(http: httpx.AsyncClient, kg: Served) -> None:
    _, body = await call(http, kg, INGEST, {"title": "nope"}, token(["reader"]))
    assert codes(body) == ["FORBIDDEN"]
    assert "writer" in body["errors"][0]["message"]


async def test_a_writer_cannot_create_keys(http: httpx.AsyncClient, kg: Served) -> None:
    _, body = await call(http, kg, CREATE_KEY, {"name": "x", "role": "ADMIN"}, token(["writer"]))
    assert codes(body) == ["FORBIDDEN"] and body["data"] is None


async def test_a_key_secret_is_shown_once_and_works(http: httpx.AsyncClient, kg: Served) -> None:
    _, body = await call(
        http, kg, CREATE_KEY, {"name": "nightly import", "role": "WRITER"}, token(["admin"])
    )
    created = body["data"]["createApiKey"]
    secret, key = created["secret"], created["key"]
    assert secret.startswith("kg_") and key["id"] in secret
    assert (key["name"], key["role"], key["active"], key["createdBy"]) == (
        "nightly import",
        "WRITER",
        True,
        "user-1",
    )
    listing = await http.post(
        kg.graphql,
        json={"query": LIST_KEYS, "variables": {"all": True}},
        headers={"Authorization": f"Bearer {token(['admin'])}"},
    )
    assert secret not in listing.text
    assert key["id"] in {k["id"] for k in listing.json()["data"]["apiKeys"]}
    _, no_field = await call(http, kg, "{ apiKeys { id secret } }", None, token(["admin"]))
    assert codes(no_field) == ["GRAPHQL_VALIDATION_FAILED"]  # keys have no secret to show
    for header in ("Authorization", "X-API-Key"):
        _, stats = await call(http, kg, "{ stats { documents } }", None, secret, header)
        assert codes(stats) == [], header
    _, ingest = await call(http, kg, INGEST, {"title": "by key"}, secret)
    assert codes(ingest) == [] and ingest["data"]["ingestDocument"]["status"] == "QUEUED"
    _, escalate = await call(http, kg, CREATE_KEY, {"name": "x", "role": "ADMIN"}, secret)
    assert codes(escalate) == ["FORBIDDEN"]


async def test_a_revoked_key_is_refused(http: httpx.AsyncClient, kg: Served) -> None:
    key_id, secret = await new_key(http, kg, "READER", "short-lived")
    _, before = await call(http, kg, "{ stats { documents } }", None, secret)
    assert codes(before) == []
    _, revoked = await call(http, kg, REVOKE_KEY, {"id": key_id}, token(["admin"]))
    assert revoked["data"]["revokeApiKey"]["active"] is False
    assert revoked["data"]["revokeApiKey"]["revokedAt"]
    response, after = await call(http, kg, "{ stats { documents } }", None, secret)
    assert codes(after) == ["UNAUTHENTICATED"]
    assert "revoked" in after["errors"][0]["message"]
    assert response.headers["www-authenticate"].endswith('error="invalid_token"')
    _, active = await call(http, kg, LIST_KEYS, {"all": False}, token(["admin"]))
    assert key_id not in {k["id"] for k in active["data"]["apiKeys"]}


async def test_revoking_an_unknown_key_is_not_found(http: httpx.AsyncClient, kg: Served) -> None:
    _, body = await call(http, kg, REVOKE_KEY, {"id": "0123456789abcdef"}, token(["admin"]))
    assert codes(body) == ["NOT_FOUND"]
    _, bad_name = await call(
        http, kg, CREATE_KEY, {"name": "  ", "role": "READER"}, token(["admin"])
    )
    assert codes(bad_name) == ["BAD_USER_INPUT"]


# --- WebSocket --------------------------------------------------------------------------


@asynccontextmanager
async def socket(
    kg: Served, payload: dict[str, Any], protocol: str = TRANSPORT_WS
) -> AsyncIterator[websockets.ClientConnection]:
    async with websockets.connect(kg.ws, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        yield ws


async def next_message(ws: websockets.ClientConnection, within: float = 5) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
        if message["type"] not in ("ka", "ping", "pong"):
            return message


async def close_of(ws: websockets.ClientConnection, within: float = 5) -> tuple[int, str]:
    """Wait until the server closes the socket; its close code and reason."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as closed:
        received = closed.rcvd
        assert received is not None, "the server did not send a close frame"
        return received.code, received.reason
    raise AssertionError("unreachable: the loop ends only when the socket closes")


async def subscribe(ws: websockets.ClientConnection, query: str = EVENTS) -> None:
    assert (await next_message(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))


@pytest.mark.parametrize("kind", ["expired", "wrong audience", "none algorithm", "garbage"])
async def test_bad_tokens_are_refused_at_connection_init(kg: Served, kind: str) -> None:
    async with socket(kg, {"Authorization": f"Bearer {BAD_TOKENS[kind]()}"}) as ws:
        assert await close_of(ws) == (4403, "Forbidden")


@pytest.mark.parametrize(
    "payload", [{}, {"apiKey": "kg_0123456789abcdef_" + "A" * 43}, {"Authorization": 7}]
)
async def test_missing_or_bad_credentials_are_refused_at_connection_init(
    kg: Served, payload: dict[str, Any]
) -> None:
    async with socket(kg, payload) as ws:
        assert await close_of(ws) == (4403, "Forbidden")


async def test_the_legacy_protocol_says_why(kg: Served) -> None:
    async with socket(kg, {"authorization": f"Bearer {BAD_TOKENS['expired']()}"}, LEGACY_WS) as ws:
        message = await next_message(ws)
        assert message["type"] == "connection_error"
        assert message["payload"]["extensions"] == {"code": "UNAUTHENTICATED"}
        assert "expired" in message["payload"]["message"]


async def test_subscribing_needs_a_reader(kg: Served) -> None:
    async with socket(kg, {"Authorization": f"Bearer {token([])}"}) as ws:
        await subscribe(ws)
        message = await next_message(ws)
        assert message["type"] == "error"
        assert [e["extensions"]["code"] for e in message["payload"]] == ["FORBIDDEN"]


async def test_a_valid_subscription_receives_events(http: httpx.AsyncClient, kg: Served) -> None:
    async with socket(kg, {"headers": {"Authorization": f"Bearer {token(['reader'])}"}}) as ws:
        await subscribe(ws)
        await asyncio.sleep(0.2)  # the subscription registers with the bus
        _, body = await call(http, kg, INGEST, {"title": "watched"}, token(["writer"]))
        job_id = body["data"]["ingestDocument"]["id"]
        message = await next_message(ws)
        assert message["type"] == "next"
        assert message["payload"]["data"]["ingestionEvents"] == {
            "jobId": job_id,
            "status": "QUEUED",
        }


async def test_revoking_a_key_closes_its_live_subscription(
    http: httpx.AsyncClient, kg: Served
) -> None:
    key_id, secret = await new_key(http, kg, "READER", "live-subscriber")
    _, other_secret = await new_key(http, kg, "READER", "bystander")
    async with (
        socket(kg, {"apiKey": secret}) as doomed,
        socket(kg, {"apiKey": other_secret}) as bystander,
    ):
        await subscribe(doomed)
        await subscribe(bystander)
        await asyncio.sleep(0.2)
        await call(http, kg, INGEST, {"title": "before revocation"}, token(["writer"]))
        assert (await next_message(doomed))["type"] == "next"  # live, and receiving
        assert (await next_message(bystander))["type"] == "next"
        started = time.monotonic()
        _, revoked = await call(http, kg, REVOKE_KEY, {"id": key_id}, token(["admin"]))
        assert codes(revoked) == []
        assert await close_of(doomed) == (4401, "Unauthorized: API key revoked")
        assert time.monotonic() - started < 3
        await bystander.ping()  # the other key's subscription stays open
        await call(http, kg, INGEST, {"title": "after revocation"}, token(["writer"]))
        assert (await next_message(bystander))["type"] == "next"
    assert len(kg.app.state.sessions) == 0  # both forgotten once closed


async def test_an_expiring_token_closes_its_live_subscription(kg: Served) -> None:
    expires = int(time.time()) + 2
    async with socket(kg, {"Authorization": f"Bearer {token(['reader'], exp=expires)}"}) as ws:
        await subscribe(ws)
        assert await close_of(ws, within=6) == (4401, "Unauthorized: credential expired")
        assert expires <= time.time() < expires + 2  # at expiry, within the check interval


async def test_a_revocation_in_another_process_closes_subscriptions_here(
    http: httpx.AsyncClient,
    kg: Served,
    keys_file: Path,
    tmp_path: Path,
) -> None:
    """Two servers sharing one key store: a key revoked through one closes the live
    subscription it opened on the other."""
    async with served(tmp_path / "second", keys_file) as other:
        key_id, secret = await new_key(http, kg, "READER", "roaming")
        async with socket(other, {"apiKey": secret}) as ws:
            await subscribe(ws)
            _, revoked = await call(http, kg, REVOKE_KEY, {"id": key_id}, token(["admin"]))
            assert codes(revoked) == []
            assert await close_of(ws) == (4401, "Unauthorized: API key revoked")


async def test_secrets_never_reach_the_logs(
    http: httpx.AsyncClient, kg: Served, logs: io.StringIO
) -> None:
    used = [token(["admin"]), token(["reader"]), BAD_TOKENS["tampered"](), BAD_TOKENS["expired"]()]
    for credential in used:
        await call(http, kg, "{ stats { documents } }", None, credential)
    _, secret = await new_key(http, kg, "READER", "logged?")
    await call(http, kg, "{ stats { documents } }", None, secret, "X-API-Key")
    await call(http, kg, "{ stats { documents } }", None, secret[:-1] + "x")
    async with socket(kg, {"apiKey": secret}) as ws:
        await subscribe(ws)
    text = logs.getvalue()
    assert '"auth.refused"' in text and '"api_key.created"' in text  # the logs were captured
    for leaked in [SECRET, secret, secret[:-1] + "x", *used]:
        assert leaked not in text
    for credential in used:  # not even the signature or payload part of a token
        assert all(part not in text for part in credential.split(".")[1:] if len(part) > 8)
