"""The modes of the real app over ASGI: local (loopback, no credentials: every caller is
admin), open (disabled on purpose: the open role), refused (another address without
authentication), an identity provider that cannot be reached (UNAVAILABLE), and the
production switches (no introspection, no GraphiQL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette

from app.config import load_settings
from app.container import build_container
from app.domain.auth import Principal, Role
from app.domain.errors import ConfigurationError
from app.server import create_app
from tests.support.live_server import free_port

CREATE_KEY = """mutation { createApiKey(name: "ops", role: READER) {
  secret key { id role createdBy } } }"""


@asynccontextmanager
async def client(
    tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    """The app as ``create_app`` builds it, with only the graph and key stores open."""
    settings = load_settings(data_dir=tmp_path, **overrides)
    container = build_container(settings)
    app = create_app(settings, container)
    await container.graph.start()
    await container.api_key_store.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield http, app
    finally:
        await app.state.auth.aclose()
        await container.api_key_store.close()
        await container.graph.close()


async def post(
    http: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query}, headers=headers or {})
    body: dict[str, Any] = response.json()
    return body


def codes(body: dict[str, Any]) -> list[Any]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


async def test_local_mode_makes_every_caller_admin(tmp_path: Path) -> None:
    async with client(tmp_path) as (http, app):
        assert app.state.auth.mode == "local"
        stats = await post(http, "{ stats { documents } }")
        assert stats == {"data": {"stats": {"documents": 0}}}
        created = await post(http, CREATE_KEY)
        assert codes(created) == [], created
        assert created["data"]["createApiKey"]["key"]["createdBy"] == "local"
        ignored = await post(
            http, "{ stats { documents } }", {"Authorization": "Bearer not-even-a-token"}
        )
        assert codes(ignored) == []  # credentials are not looked at in local mode


async def test_open_mode_gives_every_caller_the_open_role(tmp_path: Path) -> None:
    async with client(tmp_path, host="0.0.0.0", auth={"disabled": True, "open_role": "reader"}) as (
        http,
        _,
    ):
        assert codes(await post(http, "{ stats { documents } }")) == []
        assert codes(await post(http, CREATE_KEY)) == ["FORBIDDEN"]
        deleting = await post(http, 'mutation { deleteDocument(id: "doc_x") { id } }')
        assert codes(deleting) == ["FORBIDDEN"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_another_address_without_authentication_is_refused(tmp_path: Path, host: str) -> None:
    settings = load_settings(data_dir=tmp_path, host=host)
    with pytest.raises(ConfigurationError) as caught:
        create_app(settings, build_container(settings))
    assert "refusing to serve on" in caught.value.message
    assert "KG_AUTH_JWT_SECRET" in caught.value.message


async def test_api_keys_alone_enforce_authentication(tmp_path: Path) -> None:
    async with client(tmp_path, host="0.0.0.0", auth={"required": True}) as (http, app):
        assert codes(await post(http, "{ stats { documents } }")) == ["UNAUTHENTICATED"]
        admin = Principal("bootstrap", frozenset({Role.ADMIN}), "local")
        _, secret = await app.state.container.api_keys.create("first", Role.ADMIN, admin)
        with_key = await post(http, CREATE_KEY, {"X-API-Key": secret})
        assert codes(with_key) == []
        refused = await post(http, "{ stats { documents } }", {"Authorization": "Bearer a.b.c"})
        assert "API keys only" in refused["errors"][0]["message"]


async def test_an_unreachable_identity_provider_is_unavailable(tmp_path: Path) -> None:
    jwks = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"  # nothing listens
    signed = jwt.encode(
        {"alg": "RS256", "kid": "k1"},
        {"sub": "u", "exp": 4_000_000_000, "roles": ["reader"]},
        RSAKey.generate_key(2048),
        algorithms=["RS256"],
    )
    async with client(tmp_path, host="0.0.0.0", auth={"jwks_url": jwks}) as (http, _):
        body = await post(http, "{ stats { documents } }", {"Authorization": f"Bearer {signed}"})
        assert codes(body) == ["UNAVAILABLE"]
        assert body["errors"][0]["extensions"]["retryable"] is True


async def test_production_switches_hide_the_schema_and_graphiql(tmp_path: Path) -> None:
    async with client(tmp_path, introspection=False, graphiql=False) as (http, _):
        introspection = await post(http, get_introspection_query())
        assert codes(introspection) and set(codes(introspection)) == {"GRAPHQL_VALIDATION_FAILED"}
        assert "introspection" in json.dumps(introspection).lower()
        assert await post(http, "{ __typename }") == {"data": {"__typename": "Query"}}
        assert codes(await post(http, "{ stats { documents } }")) == []
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 404


async def test_by_default_the_schema_and_graphiql_are_served(tmp_path: Path) -> None:
    async with client(tmp_path) as (http, _):
        introspection = await post(http, get_introspection_query())
        assert codes(introspection) == []
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost", "[::1]:8000", "app.localhost:8000", "LOCALHOST."]
)
async def test_local_mode_serves_requests_addressed_to_this_machine(
    tmp_path: Path, host: str
) -> None:
    async with client(tmp_path) as (http, _):
        response = await http.post(
            "/graphql", json={"query": "{ stats { documents } }"}, headers={"host": host}
        )
        assert response.status_code == 200
        assert response.json() == {"data": {"stats": {"documents": 0}}}


@pytest.mark.parametrize(
    "host", ["attacker.example:8000", "kg", "127.0.0.1.nip.io", "10.0.0.5", "", "localhost.evil"]
)
async def test_local_mode_refuses_other_host_names_against_dns_rebinding(
    tmp_path: Path, host: str
) -> None:
    # A page whose name was made to resolve to 127.0.0.1 sends its own name as Host.
    async with client(tmp_path) as (http, _):
        response = await http.post(
            "/graphql", json={"query": "{ stats { documents } }"}, headers={"host": host}
        )
        assert response.status_code == 421
        assert codes(response.json()) == ["FORBIDDEN"]
        assert "local mode" in response.json()["errors"][0]["message"]


async def test_enforced_mode_does_not_check_the_host(tmp_path: Path) -> None:
    async with client(tmp_path, host="0.0.0.0", auth={"required": True}) as (http, _):
        response = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"host": "kg.example.com"}
        )
        assert response.status_code == 200
