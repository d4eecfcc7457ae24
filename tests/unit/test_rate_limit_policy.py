"""The rate-limit policy on the real in-process limiter with a clock the test moves:
which buckets a request takes from and in what order, how addresses and principals
become keys, what a refusal says, and what happens while the limiter's store is away.
Also the root fields the extension charges for, read from parsed documents."""

from __future__ import annotations

import pytest
from graphql import parse
from structlog.testing import capture_logs

from app.adapters.memory_rate_limiter import MemoryRateLimiter
from app.domain.auth import Principal, Role
from app.domain.errors import (
    BadInputError,
    ConfigurationError,
    RateLimitedError,
    UnavailableError,
)
from app.ports.rate_limiter import Bucket
from app.security.rate_limits import (
    RateLimits,
    RateLimitSettings,
    address_id,
    principal_id,
    retry_after_seconds,
)
from graphql_schema.rate_limit import root_fields

LOCAL = Principal("local", frozenset({Role.ADMIN}), "local")
OPEN = Principal("anonymous", frozenset({Role.READER}), "open")
ALICE = Principal("alice@example.com", frozenset({Role.WRITER}), "token")
KEY = Principal("api-key:0123456789abcdef", frozenset({Role.READER}), "api_key", key_id="0123")
SMALL = RateLimitSettings(
    general=Bucket(rate=1.0, burst=4), ask=Bucket(rate=0.5, burst=2), ingest=Bucket(1.0, 2)
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def limits(
    settings: RateLimitSettings = SMALL, clock: Clock | None = None
) -> tuple[RateLimits, MemoryRateLimiter]:
    limiter = MemoryRateLimiter(clock=clock or Clock())
    await limiter.start()
    return RateLimits(limiter, settings), limiter


# --- keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4 seen through a dual-stack socket
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::9", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
    ],
)
def test_addresses_become_bucket_ids(client: str, expected: str) -> None:
    assert address_id(client) == expected


def test_ipv6_hosts_in_one_64_share_a_bucket_and_the_prefix_is_settable() -> None:
    assert address_id("2001:db8:0:1::1") == address_id("2001:db8:0:1:ffff::2")
    assert address_id("2001:db8:0:1::1") != address_id("2001:db8:0:2::1")
    assert address_id("2001:db8:0:1::1", ipv6_prefix=128) == "2001:db8:0:1::1/128"
    assert address_id("2001:db8:ab:cd::1", ipv6_prefix=48) == "2001:db8:ab::/48"


@pytest.mark.parametrize("client", ["testclient", "", "unix:/run/kg.sock", "x" * 10_000, "\udcff"])
def test_other_client_strings_are_hashed_to_a_short_id(client: str) -> None:
    ident = address_id(client)
    assert ident.startswith("other:") and len(ident) == 6 + 32
    assert client not in ident or client == ""
    assert address_id(client) == ident  # stable


def test_credentials_get_a_bucket_and_shared_identities_do_not() -> None:
    assert principal_id(LOCAL) is None and principal_id(OPEN) is None
    alice = principal_id(ALICE)
    assert alice is not None and len(alice) == 32 and "alice" not in alice
    # the same subject as a token and as an API key are different holders
    as_key = Principal(ALICE.subject, ALICE.roles, "api_key")
    assert principal_id(as_key) not in (None, alice)
    # an API key counts by its id, whatever its subject reads
    renamed = Principal("api-key:other", KEY.roles, "api_key", key_id=KEY.key_id)
    assert principal_id(renamed) == principal_id(KEY)


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.0, 1), (0.2, 1), (1.0, 1), (1.01, 2), (59.5, 60)]
)
def test_retry_after_is_whole_seconds_rounded_up(seconds: float, header: int) -> None:
    assert retry_after_seconds(seconds) == header


@pytest.mark.parametrize("seconds", [float("inf"), float("nan")])
def test_retry_after_of_no_number_is_one_second(seconds: float) -> None:
    assert retry_after_seconds(seconds) == 1


# --- settings -----------------------------------------------------------------------


def test_default_policy_keeps_ask_and_ingest_below_general() -> None:
    s = RateLimitSettings()
    assert s.enabled and s.fail_open and s.ipv6_prefix == 64
    assert s.ask.rate < s.ingest.rate < s.general.rate
    assert s.ask.burst < s.general.burst and s.ingest.burst < s.general.burst
    assert s.ask_fields == {"ask", "askStream"}
    assert s.ingest_fields == {"ingestDocument", "ingestDocuments", "deleteDocument"}


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"general": Bucket(rate=0.0, burst=5)}, "general rate limit needs a finite rate"),
        ({"ask": Bucket(rate=float("nan"), burst=5)}, "ask rate limit needs a finite rate"),
        ({"ask": Bucket(rate=float("inf"), burst=5)}, "ask rate limit needs a finite rate"),
        ({"ingest": Bucket(rate=1.0, burst=0)}, "ingest burst must be at least 1"),
        ({"ingest": Bucket(rate=1.0, burst=True)}, "ingest burst must be an integer"),
        ({"general": Bucket(rate=1.0, burst=2.5)}, "general burst must be an integer"),  # type: ignore[arg-type]
        (
            {"ingest_fields": frozenset({"ask", "ingestDocument"})},
            "both ask and ingest fields: ask",
        ),
        ({"ipv6_prefix": 0}, "ipv6_prefix must be 1..128"),
        ({"ipv6_prefix": 129}, "ipv6_prefix must be 1..128"),
    ],
)
def test_bad_settings_stop_start_up(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        RateLimitSettings(**kwargs)  # type: ignore[arg-type]


# --- plan ---------------------------------------------------------------------------


async def test_plan_takes_general_then_ask_from_address_then_principal() -> None:
    policy, _ = await limits()
    takes = policy.plan(ALICE, "203.0.113.7", ["stats", "ask", "search"])
    alice = principal_id(ALICE)
    assert [(t.key, t.cost, t.bucket) for t in takes] == [
        ("general:addr:203.0.113.7", 1, SMALL.general),
        (f"general:sub:{alice}", 1, SMALL.general),
        ("ask:addr:203.0.113.7", 1, SMALL.ask),
        (f"ask:sub:{alice}", 1, SMALL.ask),
    ]
    assert [(t.limit, t.scope) for t in takes][::2] == [("general", "address"), ("ask", "address")]


async def test_plan_for_a_shared_identity_counts_the_address_only() -> None:
    policy, _ = await limits()
    for who in (LOCAL, OPEN):
        takes = policy.plan(who, "198.51.100.2", ["ingestDocument", "ingestDocuments"])
        assert [(t.key, t.cost) for t in takes] == [
            ("general:addr:198.51.100.2", 1),
            ("ingest:addr:198.51.100.2", 2),
        ]


async def test_plan_costs_one_general_token_whatever_the_operation_holds() -> None:
    policy, _ = await limits()
    assert [t.cost for t in policy.plan(LOCAL, "::1", [])] == [1]
    assert [t.cost for t in policy.plan(LOCAL, "::1", ["stats", "documents", "entities"])] == [1]
    three = policy.plan(LOCAL, "::1", ["ask", "askStream", "ask", "deleteDocument"])
    assert [(t.limit, t.cost) for t in three] == [("general", 1), ("ask", 3), ("ingest", 1)]


async def test_disabled_limits_take_nothing() -> None:
    policy, limiter = await limits(RateLimitSettings(enabled=False))
    assert policy.plan(ALICE, "203.0.113.7", ["ask"]) == []
    for _ in range(100):
        await policy.admit(ALICE, "203.0.113.7", ["ask"])
    assert len(limiter) == 0


# --- admit --------------------------------------------------------------------------


async def test_ask_runs_out_before_general_and_says_when_to_come_back() -> None:
    clock = Clock()
    policy, _ = await limits(clock=clock)
    for _ in range(2):
        await policy.admit(LOCAL, "203.0.113.7", ["ask"])
    with pytest.raises(RateLimitedError) as refused:
        await policy.admit(LOCAL, "203.0.113.7", ["ask"])
    error = refused.value
    assert error.code == "RATE_LIMITED" and error.retryable
    assert error.details == {"retry_after": 2.0, "limit": "ask", "scope": "address"}
    assert error.message == (
        "rate limit reached for questions (ask, askStream) from this address: retry in 2 s"
    )
    await policy.admit(LOCAL, "203.0.113.7", ["stats"])  # general has one token left
    with pytest.raises(RateLimitedError) as general:
        await policy.admit(LOCAL, "203.0.113.7", ["stats"])
    assert general.value.details["limit"] == "general"
    clock.now += 2.0  # two ask tokens' time: one back in ask (0.5/s), two in general
    await policy.admit(LOCAL, "203.0.113.7", ["ask"])


async def test_a_refused_request_keeps_the_tokens_taken_before_its_refusal() -> None:
    policy, limiter = await limits()
    for _ in range(2):
        await policy.admit(LOCAL, "203.0.113.7", ["ask"])
    with pytest.raises(RateLimitedError):
        await policy.admit(LOCAL, "203.0.113.7", ["ask"])
    # 3 general tokens gone (the refused request paid its own), of 4
    decision = await limiter.take("general:addr:203.0.113.7", SMALL.general)
    assert decision.allowed and decision.remaining == pytest.approx(0.0)


async def test_addresses_do_not_share_buckets() -> None:
    policy, _ = await limits()
    for _ in range(2):
        await policy.admit(LOCAL, "203.0.113.7", ["ask"])
    with pytest.raises(RateLimitedError):
        await policy.admit(LOCAL, "203.0.113.7", ["ask"])
    await policy.admit(LOCAL, "203.0.113.8", ["ask"])
    await policy.admit(LOCAL, "2001:db8::1", ["ask"])


async def test_a_credential_is_limited_across_addresses() -> None:
    policy, _ = await limits()
    await policy.admit(ALICE, "203.0.113.7", ["ask"])
    await policy.admit(ALICE, "198.51.100.1", ["ask"])
    with pytest.raises(RateLimitedError) as refused:
        await policy.admit(ALICE, "192.0.2.99", ["ask"])
    assert refused.value.details["scope"] == "principal"
    assert "from this client" in refused.value.message
    await policy.admit(KEY, "192.0.2.99", ["ask"])  # another holder, same fresh address


async def test_more_fields_than_a_burst_is_bad_input_after_paying_general() -> None:
    policy, limiter = await limits()
    with pytest.raises(BadInputError, match=r"at most 2 questions .*; this one holds 3"):
        await policy.admit(LOCAL, "203.0.113.7", ["ask", "ask", "askStream"])
    decision = await limiter.take("general:addr:203.0.113.7", SMALL.general)
    assert decision.remaining == pytest.approx(2.0)  # 4 - the refused request - this take
    await policy.admit(LOCAL, "203.0.113.7", ["ask", "ask"])  # the ask bucket was untouched


async def test_an_unavailable_store_lets_requests_through_and_logs_once() -> None:
    limiter = MemoryRateLimiter()  # never started: every take is UnavailableError
    policy = RateLimits(limiter, SMALL)
    with capture_logs() as logs:
        for _ in range(10):
            await policy.admit(ALICE, "203.0.113.7", ["ask"])
    assert [e["event"] for e in logs] == ["rate_limit.unavailable"]
    assert logs[0]["log_level"] == "warning"
    assert logs[0]["action"] == "letting requests through"
    await limiter.start()
    with capture_logs() as logs:
        await policy.admit(ALICE, "203.0.113.7", ["ask"])
    assert [e["event"] for e in logs] == ["rate_limit.recovered"]


async def test_an_unavailable_store_refuses_requests_when_failing_closed() -> None:
    closed = RateLimitSettings(fail_open=False)
    policy = RateLimits(MemoryRateLimiter(), closed)
    with pytest.raises(UnavailableError, match="not started"):
        await policy.admit(LOCAL, "203.0.113.7", ["stats"])


# --- root fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "operation", "fields"),
    [
        ('{ stats { documents } ask(question: "q") { answer } }', None, ["stats", "ask"]),
        (
            '{ a: ask(question: "1") { answer } b: ask(question: "2") { answer } }',
            None,
            ["ask", "ask"],
        ),
        # one response key, asked twice: GraphQL runs it once
        ('{ ask(question: "q") { answer } ask(question: "q") { model } }', None, ["ask"]),
        (
            'query { ...A ...A ... on Query { x: ask(question: "q") { answer } } }\n'
            'fragment A on Query { ask(question: "q") { answer } ...B }\n'
            "fragment B on Query { stats { documents } ...A }",
            None,
            ["ask", "ask", "stats"],
        ),
        (
            'mutation { ingestDocument(input: {title: "t", text: "x"}) { id } }',
            None,
            ["ingestDocument"],
        ),
        ('subscription { askStream(question: "q") { delta } }', None, ["askStream"]),
        ('query A { stats { documents } } query B { ask(question: "q") { answer } }', "B", ["ask"]),
        ('query A { stats { documents } } query B { ask(question: "q") { answer } }', None, []),
        ("query A { stats { documents } }", "Missing", []),
        ("{ ...Nowhere }", None, []),
    ],
)
def test_root_fields_are_what_the_operation_runs(
    document: str, operation: str | None, fields: list[str]
) -> None:
    assert sorted(root_fields(parse(document), operation)) == sorted(fields)


def test_root_fields_visit_each_fragment_once() -> None:
    # 2**40 paths through the fragments; each one is read once
    text = 'query { ...F40 }\nfragment F0 on Query { a: ask(question: "q") { answer } }\n'
    text += "\n".join(f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 41))
    assert root_fields(parse(text), None) == ["ask"]
