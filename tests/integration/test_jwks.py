"""JWKS verification against a real HTTP server on an ephemeral port: caching, key
rotation picked up by a refetch, rate-limited refetches for unknown key ids, one shared
fetch for concurrent callers, and an identity provider that is down (with and without a
cached key set). The cache's clock is a settable one, so no test waits or times anything."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, RSAKey

from app.domain.errors import UnauthenticatedError, UnavailableError
from app.security.jwks import JwksKeySource
from app.security.jwt_tokens import JwtSettings, JwtVerifier

CACHE_SECONDS = 300
MIN_REFETCH_SECONDS = 10


@dataclass
class Idp:
    """What the identity provider serves, and how often it was asked."""

    body: bytes = b'{"keys": []}'
    status: int = 200
    hits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, *keys: tuple[str, Key]) -> None:
        document = {"keys": [key.as_dict(private=False) | {"kid": kid} for kid, key in keys]}
        self.body = json.dumps(document).encode()


class JwksServer:
    def __init__(self) -> None:
        self.idp = Idp()
        idp = self.idp

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with idp.lock:
                    idp.hits += 1
                self.send_response(idp.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(idp.body)))
                self.end_headers()
                self.wfile.write(idp.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()
            self.running = False


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def server() -> Iterator[JwksServer]:
    s = JwksServer()
    yield s
    s.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


@pytest.fixture(scope="module")
def rsa_keys() -> list[RSAKey]:
    return [
        RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        for _ in range(2)
    ]


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))


def build(
    server: JwksServer, http: httpx.AsyncClient, clock: Clock
) -> tuple[JwtVerifier, JwksKeySource]:
    source = JwksKeySource(
        server.url,
        client=http,
        cache_seconds=CACHE_SECONDS,
        min_refetch_seconds=MIN_REFETCH_SECONDS,
        clock=clock,
    )
    settings = JwtSettings(jwks_url=server.url, issuer="https://idp.test/", audience="kg")
    return JwtVerifier(settings, jwks=source), source


def token(key: Key, alg: str, kid: str | None, sub: str = "user-1", **claims: Any) -> str:
    header = {"alg": alg} | ({"kid": kid} if kid is not None else {})
    body = {
        "sub": sub,
        "iss": "https://idp.test/",
        "aud": "kg",
        "exp": int(time.time()) + 3600,
        "roles": ["reader"],
    } | claims
    return jwt.encode(header, body, key, algorithms=[alg])


async def test_keys_are_fetched_once_and_cached(
    server: JwksServer, http: httpx.AsyncClient, rsa_keys: list[RSAKey], ec_key: ECKey
) -> None:
    server.idp.publish(("r1", rsa_keys[0]), ("e1", ec_key))
    clock = Clock()
    verifier, _ = build(server, http, clock)
    assert (await verifier.verify(token(rsa_keys[0], "RS256", "r1"))).subject == "user-1"
    assert (await verifier.verify(token(ec_key, "ES256", "e1", sub="svc"))).subject == "svc"
    clock.advance(CACHE_SECONDS - 1)
    assert (await verifier.verify(token(rsa_keys[0], "RS256", "r1"))).subject == "user-1"
    assert server.idp.hits == 1
    clock.advance(2)  # the cache has expired: the next token refreshes it
    assert (await verifier.verify(token(rsa_keys[0], "RS256", "r1"))).subject == "user-1"
    assert server.idp.hits == 2


async def test_concurrent_verifications_share_one_fetch(
    server: JwksServer, http: httpx.AsyncClient, rsa_keys: list[RSAKey]
) -> None:
    server.idp.publish(("r1", rsa_keys[0]))
    verifier, _ = build(server, http, Clock())
    tokens = [token(rsa_keys[0], "RS256", "r1", sub=f"user-{i}") for i in range(20)]
    principals = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert [p.subject for p in principals] == [f"user-{i}" for i in range(20)]
    assert server.idp.hits == 1


async def test_key_rotation_is_picked_up_by_a_refetch(
    server: JwksServer, http: httpx.AsyncClient, rsa_keys: list[RSAKey]
) -> None:
    old, new = rsa_keys
    server.idp.publish(("k-old", old))
    clock = Clock()
    verifier, _ = build(server, http, clock)
    assert (await verifier.verify(token(old, "RS256", "k-old"))).subject == "user-1"

    server.idp.publish(("k-new", new))  # the provider rotates and drops the old key
    clock.advance(MIN_REFETCH_SECONDS - 1)
    with pytest.raises(UnauthenticatedError, match="unknown kid"):
        await verifier.verify(token(new, "RS256", "k-new"))  # too soon to ask again
    assert server.idp.hits == 1

    clock.advance(1)
    assert (await verifier.verify(token(new, "RS256", "k-new"))).subject == "user-1"
    assert server.idp.hits == 2
    with pytest.raises(UnauthenticatedError, match="unknown kid") as caught:
        await verifier.verify(token(old, "RS256", "k-old"))  # withdrawn by the provider
    assert caught.value.details["reason"] == "unknown_key"
    assert server.idp.hits == 2


async def test_unknown_kids_cannot_make_us_hammer_the_provider(
    server: JwksServer, http: httpx.AsyncClient, rsa_keys: list[RSAKey]
) -> None:
    good, stranger = rsa_keys
    server.idp.publish(("r1", good))
    clock = Clock()
    verifier, _ = build(server, http, clock)
    await verifier.verify(token(good, "RS256", "r1"))
    clock.advance(MIN_REFETCH_SECONDS)
    for i in range(25):
        with pytest.raises(UnauthenticatedError, match="unknown kid"):
            await verifier.verify(token(stranger, "RS256", f"garbage-{i}"))
    assert server.idp.hits == 2  # the first fetch, then one refetch for all 25
    clock.advance(MIN_REFETCH_SECONDS)
    with pytest.raises(UnauthenticatedError, match="unknown kid"):
        await verifier.verify(token(stranger, "RS256", "garbage-again"))
    assert server.idp.hits == 3
    assert (await verifier.verify(token(good, "RS256", "r1"))).subject == "user-1"


async def test_known_kid_with_a_forged_signature_does_not_refetch(
    server: JwksServer, http: httpx.AsyncClient, rsa_keys: list[RSAKey]
) -> None:
    good, stranger = rsa_keys
    server.idp.publish(("r1", good))
    clock = Clock()
    verifier, _ = build(server, http, clock)
    clock.advance(MIN_REFETCH_SECONDS * 5)
    with pytest.raises(UnauthenticatedError, match="signature is invalid"):
        await verifier.verify(token(stranger, "RS256", "r1"))
    assert server.idp.hits == 1


async def test_token_without_kid_is_tried_against_each_key_of_its_algorithm(
    server: JwksServer, http: httpx.AsyncClient, rsa_keys: list[RSAKey], ec_key: ECKey
) -> None:
    server.idp.publish(("r1", rsa_keys[0]), ("r2", rsa_keys[1]), ("e1", ec_key))
    verifier, _ = build(server, http, Clock())
    assert (await verifier.verify(token(rsa_keys[1], "RS256", None))).subject == "user-1"
    assert (await verifier.verify(token(ec_key, "ES256", None))).subject == "user-1"
    assert server.idp.hits == 1


async def test_token_for_an_algorithm_the_provider_has_no_key_for_is_refused(
    server: JwksServer, http: httpx.AsyncClient, rsa_keys: list[RSAKey], ec_key: ECKey
) -> None:
    server.idp.publish(("r1", rsa_keys[0]))
    verifier, _ = build(server, http, Clock())
    with pytest.raises(UnauthenticatedError, match="does not publish for ES256"):
        await verifier.verify(token(ec_key, "ES256", None))
    with pytest.raises(UnauthenticatedError, match="signature is invalid"):
        await verifier.verify(token(rsa_keys[1], "RS256", None))


async def test_keys_a_jwks_must_not_contribute_are_ignored(
    server: JwksServer, http: httpx.AsyncClient, ec_key: ECKey
) -> None:
    secret = OctKey.import_key("a-secret-published-by-mistake-0123456789")
    document = {
        "keys": [
            secret.as_dict(private=True) | {"kid": "o1"},
            ec_key.as_dict(private=False) | {"kid": "e1"},
        ]
    }
    server.idp.body = json.dumps(document).encode()
    verifier, _ = build(server, http, Clock())
    assert verifier.algorithms == frozenset({"RS256", "ES256"})
    with pytest.raises(UnauthenticatedError, match="does not accept"):
        await verifier.verify(token(secret, "HS256", "o1"))
    body = token(ec_key, "ES256", "e1").split(".")[1]
    with pytest.raises(UnauthenticatedError, match="alg none"):
        await verifier.verify(f"eyJhbGciOiJub25lIn0.{body}.")
    assert (await verifier.verify(token(ec_key, "ES256", "e1"))).subject == "user-1"


async def test_provider_down_with_a_cached_set_keeps_using_it(
    server: JwksServer, http: httpx.AsyncClient, rsa_keys: list[RSAKey]
) -> None:
    server.idp.publish(("r1", rsa_keys[0]))
    clock = Clock()
    verifier, _ = build(server, http, clock)
    await verifier.verify(token(rsa_keys[0], "RS256", "r1"))

    server.idp.status = 503
    clock.advance(CACHE_SECONDS + 1)
    assert (await verifier.verify(token(rsa_keys[0], "RS256", "r1"))).subject == "user-1"
    assert server.idp.hits == 2  # it tried, failed, and kept the cached keys

    server.stop()
    clock.advance(MIN_REFETCH_SECONDS)
    assert (await verifier.verify(token(rsa_keys[0], "RS256", "r1"))).subject == "user-1"
    with pytest.raises(UnauthenticatedError, match="unknown kid"):
        await verifier.verify(token(rsa_keys[1], "RS256", "r2"))


async def test_provider_down_without_a_cached_set_is_unavailable(
    server: JwksServer, http: httpx.AsyncClient, rsa_keys: list[RSAKey]
) -> None:
    server.idp.publish(("r1", rsa_keys[0]))
    server.stop()
    clock = Clock()
    verifier, _ = build(server, http, clock)
    with pytest.raises(UnavailableError, match="identity provider keys are unavailable") as caught:
        await verifier.verify(token(rsa_keys[0], "RS256", "r1"))
    assert caught.value.retryable
    assert "ConnectError" in caught.value.message


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"{}", "answered HTTP 500"),
        (200, b"<html>login</html>", "is not JSON"),
        (200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "no usable RS256 or ES256"),
        (200, b"[]", "no usable RS256 or ES256"),
        (200, b" " * (600 * 1024), "is over"),
    ],
)
async def test_a_bad_key_set_with_nothing_cached_is_unavailable_and_retried_later(
    server: JwksServer,
    http: httpx.AsyncClient,
    rsa_keys: list[RSAKey],
    status: int,
    body: bytes,
    reason: str,
) -> None:
    server.idp.status, server.idp.body = status, body
    clock = Clock()
    verifier, _ = build(server, http, clock)
    signed = token(rsa_keys[0], "RS256", "r1")
    for _ in range(3):
        with pytest.raises(UnavailableError, match=reason):
            await verifier.verify(signed)
    assert server.idp.hits == 1  # failures are rate-limited too

    server.idp.status = 200
    server.idp.publish(("r1", rsa_keys[0]))
    clock.advance(MIN_REFETCH_SECONDS)
    assert (await verifier.verify(signed)).subject == "user-1"
    assert server.idp.hits == 2


async def test_verifier_built_from_settings_alone_owns_and_closes_its_client(
    server: JwksServer, rsa_keys: list[RSAKey]
) -> None:
    server.idp.publish(("r1", rsa_keys[0]))
    verifier = JwtVerifier(JwtSettings(jwks_url=server.url, jwks_timeout_seconds=2))
    try:
        principal = await verifier.verify(token(rsa_keys[0], "RS256", "r1"))
        assert principal.subject == "user-1"
        assert principal.kind == "token"
    finally:
        await verifier.aclose()
    assert server.idp.hits == 1
