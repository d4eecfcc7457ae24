"""JWT verification with real keys: tokens signed by joserfc with RSA 2048, EC P-256 and
HS256 secrets, and hand-built hostile tokens (alg none, algorithm confusion, tampering,
garbage). Time claims are checked against a fixed clock, so nothing depends on timing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from joserfc import jwt
from joserfc.jwk import ECKey, Key, OctKey, RSAKey
from pydantic import SecretStr

from app.domain.auth import Role
from app.domain.errors import ConfigurationError, UnauthenticatedError
from app.security.jwks import key_from_jwk, keys_from_jwks
from app.security.jwt_tokens import JwtSettings, JwtVerifier

NOW = 1_800_000_000
SECRET = "s3cret-for-tests-only-0123456789-abcdef"
ISSUER = "https://idp.example.test/"
AUDIENCE = "kg-api"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def public_pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "sub": "user-1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": NOW - 10,
        "exp": NOW + 600,
        "roles": ["writer"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: Key, alg: str, body: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": alg, **header}, body, key, algorithms=[alg])


def hs256_by_hand(secret: bytes, body: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """An HS256 token signed with any bytes at all, which joserfc itself would refuse."""
    signing_input = f"{b64json(header or {'alg': 'HS256', 'typ': 'JWT'})}.{b64json(body)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


@pytest.fixture(scope="module")
def rsa_private() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_private() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key(rsa_private: rsa.RSAPrivateKey) -> RSAKey:
    return RSAKey.import_key(rsa_private)


@pytest.fixture(scope="module")
def ec_key(ec_private: ec.EllipticCurvePrivateKey) -> ECKey:
    return ECKey.import_key(ec_private)


@pytest.fixture(scope="module")
def hmac_key() -> OctKey:
    return OctKey.import_key(SECRET)


def verifier(**settings: Any) -> JwtVerifier:
    base: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    return JwtVerifier(JwtSettings(**(base | settings)), clock=lambda: NOW)


@pytest.fixture
def hs() -> JwtVerifier:
    return verifier(secret=SecretStr(SECRET))


@pytest.fixture
def rs(rsa_private: rsa.RSAPrivateKey) -> JwtVerifier:
    return verifier(public_key=public_pem(rsa_private))


@pytest.fixture
def es(ec_private: ec.EllipticCurvePrivateKey) -> JwtVerifier:
    return verifier(public_key=public_pem(ec_private))


async def refusal(v: JwtVerifier, token: str) -> UnauthenticatedError:
    with pytest.raises(UnauthenticatedError) as caught:
        await v.verify(token)
    err = caught.value
    assert err.code == "UNAUTHENTICATED"
    # never echo the token, a part of it, or the secret
    for part in [token, *token.split(".")]:
        assert len(part) < 8 or part not in err.message
    assert SECRET not in err.message
    return err


# --- valid tokens -------------------------------------------------------------------


async def test_valid_hs256_token_gives_its_principal(hs: JwtVerifier, hmac_key: OctKey) -> None:
    principal = await hs.verify(sign(hmac_key, "HS256", claims(roles=["writer", "reader"])))
    assert principal.subject == "user-1"
    assert principal.kind == "token"
    assert principal.roles == frozenset({Role.WRITER, Role.READER})
    assert principal.role is Role.WRITER
    assert principal.expires_at == datetime.fromtimestamp(NOW + 600, tz=UTC)
    assert principal.key_id is None
    assert hs.algorithms == frozenset({"HS256"})


async def test_valid_rs256_token(rs: JwtVerifier, rsa_key: RSAKey) -> None:
    principal = await rs.verify(sign(rsa_key, "RS256", claims(roles=["admin"])))
    assert principal.roles == frozenset({Role.ADMIN})
    assert principal.may(Role.WRITER)
    assert rs.algorithms == frozenset({"RS256"})


async def test_valid_es256_token(es: JwtVerifier, ec_key: ECKey) -> None:
    principal = await es.verify(sign(ec_key, "ES256", claims(sub="svc")))
    assert principal.subject == "svc"
    assert es.algorithms == frozenset({"ES256"})


async def test_several_pem_keys_and_certificates_are_each_trusted_for_their_own_algorithm(
    rsa_private: rsa.RSAPrivateKey,
    rsa_key: RSAKey,
    ec_private: ec.EllipticCurvePrivateKey,
    ec_key: ECKey,
) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_private.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
        .sign(rsa_private, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    v = verifier(public_key=f"{cert_pem}\n{public_pem(ec_private)}")
    assert v.algorithms == frozenset({"RS256", "ES256"})
    assert (await v.verify(sign(rsa_key, "RS256", claims()))).subject == "user-1"
    assert (await v.verify(sign(ec_key, "ES256", claims()))).subject == "user-1"


async def test_a_kid_in_the_header_does_not_matter_for_configured_keys(
    rs: JwtVerifier, rsa_key: RSAKey
) -> None:
    assert (await rs.verify(sign(rsa_key, "RS256", claims(), kid="whatever"))).subject == "user-1"


# --- time claims --------------------------------------------------------------------


async def test_expired_token_is_refused(hs: JwtVerifier, hmac_key: OctKey) -> None:
    err = await refusal(hs, sign(hmac_key, "HS256", claims(exp=NOW - 60)))
    assert err.message.startswith("token expired")
    assert err.details["reason"] == "expired"


async def test_token_not_yet_valid_is_refused(hs: JwtVerifier, hmac_key: OctKey) -> None:
    err = await refusal(hs, sign(hmac_key, "HS256", claims(nbf=NOW + 120)))
    assert "not valid yet" in err.message
    assert err.details["reason"] == "not_yet_valid"


async def test_token_issued_in_the_future_is_refused(hs: JwtVerifier, hmac_key: OctKey) -> None:
    err = await refusal(hs, sign(hmac_key, "HS256", claims(iat=NOW + 3600)))
    assert "issued in the future" in err.message


async def test_leeway_covers_small_clock_skew_and_no_more(hmac_key: OctKey) -> None:
    lenient = verifier(secret=SecretStr(SECRET), leeway_seconds=30)
    strict = verifier(secret=SecretStr(SECRET), leeway_seconds=0)
    just_expired = sign(hmac_key, "HS256", claims(exp=NOW - 10))
    almost_valid = sign(hmac_key, "HS256", claims(nbf=NOW + 10))
    long_expired = sign(hmac_key, "HS256", claims(exp=NOW - 31))
    assert (await lenient.verify(just_expired)).subject == "user-1"
    assert (await lenient.verify(almost_valid)).subject == "user-1"
    assert (await refusal(lenient, long_expired)).details["reason"] == "expired"
    assert (await refusal(strict, just_expired)).details["reason"] == "expired"
    assert (await refusal(strict, almost_valid)).details["reason"] == "not_yet_valid"


async def test_token_without_exp_is_refused(hs: JwtVerifier, hmac_key: OctKey) -> None:
    err = await refusal(hs, sign(hmac_key, "HS256", claims(exp=None)))
    assert err.message == "token lacks required claims: exp"


@pytest.mark.parametrize(
    ("exp", "reason"),
    [("tomorrow", "claims"), (True, "claims"), (1e20, "claims"), (float("nan"), "claims")],
)
async def test_exp_that_is_not_a_usable_time_is_refused(
    hs: JwtVerifier, hmac_key: OctKey, exp: Any, reason: str
) -> None:
    err = await refusal(hs, sign(hmac_key, "HS256", claims(exp=exp)))
    assert err.details["reason"] == reason
    assert "exp" in err.message


# --- issuer, audience, subject, required claims -------------------------------------


async def test_wrong_issuer_is_refused(hs: JwtVerifier, hmac_key: OctKey) -> None:
    err = await refusal(hs, sign(hmac_key, "HS256", claims(iss="https://evil.test/")))
    assert err.message.startswith("wrong issuer")
    assert ISSUER in err.message


async def test_missing_issuer_is_refused_when_one_is_configured(
    hs: JwtVerifier, hmac_key: OctKey
) -> None:
    err = await refusal(hs, sign(hmac_key, "HS256", claims(iss=None)))
    assert err.message == "token lacks required claims: iss"


async def test_wrong_audience_is_refused(hs: JwtVerifier, hmac_key: OctKey) -> None:
    err = await refusal(hs, sign(hmac_key, "HS256", claims(aud="another-api")))
    assert err.message.startswith("wrong audience")
    assert (await refusal(hs, sign(hmac_key, "HS256", claims(aud=["a", "b"])))).details[
        "reason"
    ] == "audience"


async def test_audience_list_naming_this_server_is_accepted(
    hs: JwtVerifier, hmac_key: OctKey
) -> None:
    token = sign(hmac_key, "HS256", claims(aud=["other-api", AUDIENCE]))
    assert (await hs.verify(token)).subject == "user-1"


async def test_unconfigured_issuer_and_audience_are_not_checked(hmac_key: OctKey) -> None:
    v = JwtVerifier(JwtSettings(secret=SecretStr(SECRET)), clock=lambda: NOW)
    token = sign(hmac_key, "HS256", claims(iss="anyone", aud=None))
    assert (await v.verify(token)).subject == "user-1"


async def test_subject_is_required_and_must_be_a_non_empty_string(
    hs: JwtVerifier, hmac_key: OctKey
) -> None:
    assert (await refusal(hs, sign(hmac_key, "HS256", claims(sub=None)))).message == (
        "token lacks required claims: sub"
    )
    assert (await refusal(hs, sign(hmac_key, "HS256", claims(sub="")))).details[
        "reason"
    ] == "claims"
    assert (await refusal(hs, sign(hmac_key, "HS256", claims(sub=42)))).details[
        "reason"
    ] == "claims"


async def test_configured_required_claims_are_enforced(hmac_key: OctKey) -> None:
    v = verifier(secret=SecretStr(SECRET), required_claims=("exp", "jti"))
    err = await refusal(v, sign(hmac_key, "HS256", claims()))
    assert err.message == "token lacks required claims: jti"
    assert (await v.verify(sign(hmac_key, "HS256", claims(jti="t-1")))).subject == "user-1"


# --- keys, signatures and algorithms -------------------------------------------------


async def test_token_signed_with_another_key_is_refused(
    hs: JwtVerifier, rs: JwtVerifier, es: JwtVerifier
) -> None:
    other_rsa = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    other_ec = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    other_secret = OctKey.import_key("another-secret-of-enough-length-0123456789")
    for v, token in [
        (rs, sign(other_rsa, "RS256", claims())),
        (es, sign(other_ec, "ES256", claims())),
        (hs, sign(other_secret, "HS256", claims())),
    ]:
        err = await refusal(v, token)
        assert err.details["reason"] == "signature"
        assert "signature is invalid" in err.message


async def test_tampered_payload_is_refused(rs: JwtVerifier, rsa_key: RSAKey) -> None:
    header, _, signature = sign(rsa_key, "RS256", claims(roles=["reader"])).split(".")
    forged = f"{header}.{b64json(claims(roles=['admin']))}.{signature}"
    assert (await refusal(rs, forged)).details["reason"] == "signature"


async def test_tampered_signature_is_refused(
    hs: JwtVerifier, hmac_key: OctKey, es: JwtVerifier, ec_key: ECKey
) -> None:
    for v, token in [
        (hs, sign(hmac_key, "HS256", claims())),
        (es, sign(ec_key, "ES256", claims())),
    ]:
        header, payload, signature = token.split(".")
        middle = len(signature) // 2
        flipped = "A" if signature[middle] != "A" else "B"
        tampered = signature[:middle] + flipped + signature[middle + 1 :]
        assert (await refusal(v, f"{header}.{payload}.{tampered}")).details["reason"] == "signature"
        assert (await refusal(v, f"{header}.{payload}.")).details["reason"] == "signature"


@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(
    hs: JwtVerifier, rs: JwtVerifier, alg: str, signature: str
) -> None:
    token = f"{b64json({'alg': alg, 'typ': 'JWT'})}.{b64json(claims(roles=['admin']))}.{signature}"
    for v in (hs, rs):
        err = await refusal(v, token)
        assert err.message == "unsigned tokens (alg none) are refused"


async def test_hs256_signed_with_the_public_key_pem_is_refused(
    rsa_private: rsa.RSAPrivateKey, ec_private: ec.EllipticCurvePrivateKey
) -> None:
    for private in (rsa_private, ec_private):
        pem = public_pem(private)
        v = verifier(public_key=pem)
        for secret in (pem.encode(), pem.strip().encode()):
            err = await refusal(v, hs256_by_hand(secret, claims(roles=["admin"])))
            assert err.details["reason"] == "algorithm"
            assert "does not accept" in err.message


async def test_asymmetric_token_is_refused_when_only_a_secret_is_configured(
    hs: JwtVerifier, rsa_key: RSAKey, ec_key: ECKey
) -> None:
    for token in (sign(rsa_key, "RS256", claims()), sign(ec_key, "ES256", claims())):
        err = await refusal(hs, token)
        assert (
            err.message == "token signed with an algorithm this server does not accept (HS256 only)"
        )


async def test_other_algorithms_of_the_right_key_kind_are_refused(
    rs: JwtVerifier, es: JwtVerifier, hs: JwtVerifier, rsa_key: RSAKey, ec_key: ECKey
) -> None:
    assert (await refusal(rs, sign(rsa_key, "PS256", claims()))).details["reason"] == "algorithm"
    assert (await refusal(rs, sign(rsa_key, "RS512", claims()))).details["reason"] == "algorithm"
    assert (await refusal(rs, sign(ec_key, "ES256", claims()))).details["reason"] == "algorithm"
    assert (await refusal(es, sign(rsa_key, "RS256", claims()))).details["reason"] == "algorithm"
    hs512 = OctKey.import_key(SECRET * 2)
    assert (await refusal(hs, sign(hs512, "HS512", claims()))).details["reason"] == "algorithm"


# --- malformed input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.???.###",
        "....",
        "héllo.wörld.sig",
        f"{b64(b'not json')}.{b64json({'sub': 'x'})}.sig",
        f"{b64json(['alg', 'HS256'])}.{b64json({'sub': 'x'})}.sig",
        f"{b64json({'typ': 'JWT'})}.{b64json({'sub': 'x'})}.sig",
        f"{b64json({'alg': 'HS256', 'kid': 7})}.{b64json({'sub': 'x'})}.sig",
        f"{b64json({'alg': 'HS256', 'crit': ['exp']})}.{b64json({'sub': 'x'})}.sig",
        f"{b64json({'alg': 'HS256', 'b64': False, 'crit': ['b64']})}.payload.sig",
    ],
)
async def test_garbage_is_refused_as_malformed(hs: JwtVerifier, token: str) -> None:
    err = await refusal(hs, token)
    assert err.details["reason"] == "malformed"


async def test_empty_and_oversized_tokens_are_refused_before_parsing(
    hs: JwtVerifier, hmac_key: OctKey
) -> None:
    assert (await refusal(hs, "")).message == "no token given"
    huge = sign(hmac_key, "HS256", claims(pad="x" * 9000))
    err = await refusal(hs, huge)
    assert err.message == "token too large (over 8192 bytes)"
    assert (await refusal(hs, "a" * 10_000_000)).details["reason"] == "too_large"


async def test_a_validly_signed_payload_that_is_not_a_claims_object_is_refused(
    hs: JwtVerifier,
) -> None:
    for payload in (b"[1, 2]", b"not json", b"\xff\xfe"):
        signing_input = f"{b64json({'alg': 'HS256'})}.{b64(payload)}"
        mac = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
        err = await refusal(hs, f"{signing_input}.{b64(mac)}")
        assert err.details["reason"] == "malformed"


# --- roles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["reader"], {Role.READER}),
        (["Admin", " WRITER "], {Role.ADMIN, Role.WRITER}),
        (["reader", "billing-admin", "superuser"], {Role.READER}),
        ([], set()),
        (None, set()),
    ],
)
async def test_roles_claim_variants(
    hs: JwtVerifier, hmac_key: OctKey, roles: list[str] | None, expected: set[Role]
) -> None:
    principal = await hs.verify(sign(hmac_key, "HS256", claims(roles=roles)))
    assert principal.roles == frozenset(expected)


@pytest.mark.parametrize("roles", ["admin", "reader writer", {"admin": True}, ["admin", 1], 3])
async def test_roles_claim_that_is_not_a_list_of_names_is_refused(
    hs: JwtVerifier, hmac_key: OctKey, roles: Any
) -> None:
    err = await refusal(hs, sign(hmac_key, "HS256", claims(roles=roles)))
    assert err.message == "token claim 'roles' must be a list of role names"


async def test_roles_claim_name_is_configurable(hmac_key: OctKey) -> None:
    v = verifier(secret=SecretStr(SECRET), roles_claim="kg_roles")
    principal = await v.verify(sign(hmac_key, "HS256", claims(kg_roles=["admin"])))
    assert principal.roles == frozenset({Role.ADMIN})


# --- settings -------------------------------------------------------------------------


def test_exactly_one_key_source_must_be_configured(rsa_private: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ConfigurationError, match="exactly one"):
        JwtVerifier(JwtSettings())
    with pytest.raises(ConfigurationError, match="exactly one"):
        JwtVerifier(JwtSettings(secret=SecretStr(SECRET), public_key=public_pem(rsa_private)))
    with pytest.raises(ConfigurationError, match="exactly one"):
        JwtVerifier(JwtSettings(secret=SecretStr(SECRET), jwks_url="https://idp.test/jwks"))


def test_weak_or_misplaced_secrets_are_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes") as short:
        JwtVerifier(JwtSettings(secret=SecretStr("short-secret")))
    assert "short-secret" not in str(short.value)
    with pytest.raises(ConfigurationError, match="PEM"):
        JwtVerifier(JwtSettings(secret=SecretStr(public_pem(rsa_private))))


def test_unusable_public_keys_are_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    private_pem = rsa_private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    small_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    cases = {
        "no PEM block": "not a key",
        "private key": private_pem,
        "2048 bits": public_pem(small_rsa),
        "P-256": public_pem(p384),
        "unreadable": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    }
    for expected, pem in cases.items():
        with pytest.raises(ConfigurationError, match=expected):
            JwtVerifier(JwtSettings(public_key=pem))


def test_jwks_url_must_be_http(rsa_private: rsa.RSAPrivateKey) -> None:
    for url in ("file:///etc/jwks.json", "idp.test/jwks", "https://"):
        with pytest.raises(ConfigurationError, match="JWKS URL"):
            JwtVerifier(JwtSettings(jwks_url=url))


def test_settings_are_frozen() -> None:
    settings = JwtSettings(secret=SecretStr(SECRET))
    with pytest.raises(AttributeError):
        settings.leeway_seconds = 0  # type: ignore[misc]
    assert settings.required_claims == ("exp",)
    assert SECRET not in repr(settings)


# --- JWK parsing (what a JWKS may contribute) ------------------------------------------


def test_jwks_keys_are_bound_to_their_own_algorithm(rsa_key: RSAKey, ec_key: ECKey) -> None:
    rsa_jwk = rsa_key.as_dict(private=False) | {"kid": "r1"}
    ec_jwk = ec_key.as_dict(private=False) | {"kid": "e1", "alg": "ES256", "use": "sig"}
    keys = keys_from_jwks({"keys": [rsa_jwk, ec_jwk]})
    assert [(k.alg, k.kid) for k in keys] == [("RS256", "r1"), ("ES256", "e1")]


def test_jwks_keys_we_must_not_trust_are_skipped(rsa_key: RSAKey, ec_key: ECKey) -> None:
    rsa_jwk = rsa_key.as_dict(private=False)
    small = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
    )
    p384 = ECKey.import_key(ec.generate_private_key(ec.SECP384R1()).public_key())
    skipped: list[dict[str, Any]] = [
        {"kty": "oct", "k": b64(SECRET.encode()), "kid": "o1"},
        {"kty": "RSA", "n": b64(small.n.to_bytes(128, "big")), "e": "AQAB"},
        p384.as_dict(private=False),
        rsa_jwk | {"use": "enc"},
        rsa_jwk | {"key_ops": ["encrypt"]},
        rsa_jwk | {"alg": "RS512"},
        rsa_jwk | {"alg": "HS256"},
        ec_key.as_dict(private=False) | {"alg": "ES384"},
        rsa_jwk | {"kid": 5},
        {"kty": "RSA", "n": "???", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
    ]
    assert all(key_from_jwk(jwk) is None for jwk in skipped)
    assert keys_from_jwks({"keys": [*skipped, "junk", 3]}) == []
    assert keys_from_jwks({"keys": "nope"}) == []
    assert keys_from_jwks(["keys"]) == []


def test_jwks_private_members_are_dropped(rsa_key: RSAKey) -> None:
    key = key_from_jwk(rsa_key.as_dict(private=True) | {"kid": "r1"})
    assert key is not None
    assert key.alg == "RS256"
    assert not key.key.is_private
