"""Rate limits: which token buckets a request takes from, and the one place that asks the
RateLimiter and turns a refusal into ``RATE_LIMITED``.

What a request takes:

- every operation takes 1 token from the *general* bucket, whatever it holds;
- each root field named in ``ask_fields`` (``ask``, ``askStream``) takes 1 from the
  *ask* bucket, and each in ``ingest_fields`` (``ingestDocument``, ``ingestDocuments``,
  ``deleteDocument``) 1 from the *ingest* bucket. Fields are counted once per response
  key, as GraphQL runs them: ``{ a: ask(...) b: ask(...) }`` costs 2 ask tokens, and
  the same field reached through two fragments costs 1. An operation holding more such
  fields than the bucket's burst could never pass: ``BAD_USER_INPUT``, once its general
  tokens are taken (so sending such operations is not a way around the limit).

Each of those is taken from two buckets: the client address's, always, and the
principal's when the caller holds a credential (a verified token or an API key). Local
and open principals share one identity for everybody, so for them the address alone
counts. IPv6 addresses count per /64 (``ipv6_prefix``): one host usually holds a whole
/64, and counting single addresses would give it 2**64 buckets.

Order: general before ask and ingest (a refused question must not cost a scarce ask
token more than needed), address before principal; the first refusal stops the request
and names its bucket, and the takes before it stay taken (erring on the strict side).

Keys read ``<limit>:<scope>:<id>``: ``ask:addr:203.0.113.7``, ``general:addr:2001:db8::/64``,
``ingest:sub:<32 hex>``. Principals and addresses that are not IP addresses are
hashed (SHA-256, 128 bits kept): keys stay short whatever a client sends, and no
subject (often an e-mail address) lands in Redis.

When the limiter's store is down (``UnavailableError``), ``fail_open`` (the default)
lets requests through and logs a warning once per outage: an abuse control should not
take the API down with it. ``fail_open=False`` refuses them with ``UNAVAILABLE``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import structlog

from app.domain.auth import Principal
from app.domain.errors import BadInputError, ConfigurationError, RateLimitedError, UnavailableError
from app.ports.rate_limiter import Bucket, RateLimiter

log = structlog.get_logger(__name__)

Limit = Literal["general", "ask", "ingest"]
Scope = Literal["address", "principal"]

ASK_FIELDS = frozenset({"ask", "askStream"})
INGEST_FIELDS = frozenset({"ingestDocument", "ingestDocuments", "deleteDocument"})
GENERAL = Bucket(rate=20.0, burst=60)
ASK = Bucket(rate=1.0, burst=10)
INGEST = Bucket(rate=5.0, burst=20)
_CREDENTIAL_KINDS = frozenset({"token", "api_key"})
_SCOPE_TAGS: dict[Scope, str] = {"address": "addr", "principal": "sub"}
_WHAT: dict[Limit, str] = {
    "general": "requests",
    "ask": "questions (ask, askStream)",
    "ingest": "ingestion requests (ingest and delete)",
}
_WHO: dict[Scope, str] = {"address": "this address", "principal": "this client"}


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """The policy. Defaults, per address and per principal alike:

    - general 20/s, burst 60: a UI page firing a dozen queries at once, several times
      a second, never notices; a loop hammering the API gets 20 a second;
    - ask 1/s, burst 10: a person asks far less often; an answer costs retrieval plus
      generation (seconds of CPU with an LLM), so a script gets 10 at once, then 1/s;
    - ingest 5/s, burst 20: each request may carry up to ``max_batch_documents``, so
      bulk loads are paced by the ingestion queue, not by this limit.
    """

    enabled: bool = True
    general: Bucket = GENERAL
    ask: Bucket = ASK
    ingest: Bucket = INGEST
    ask_fields: frozenset[str] = ASK_FIELDS
    ingest_fields: frozenset[str] = INGEST_FIELDS
    ipv6_prefix: int = 64
    fail_open: bool = True

    def __post_init__(self) -> None:
        for name in ("general", "ask", "ingest"):
            bucket: Bucket = getattr(self, name)
            if not (math.isfinite(bucket.rate) and bucket.rate > 0):
                raise ConfigurationError(
                    f"the {name} rate limit needs a finite rate > 0, got {bucket.rate}"
                )
            if isinstance(bucket.burst, bool) or not isinstance(bucket.burst, int):
                raise ConfigurationError(
                    f"the {name} burst must be an integer, got {bucket.burst!r}"
                )
            if bucket.burst < 1:
                raise ConfigurationError(f"the {name} burst must be at least 1, got {bucket.burst}")
        if overlap := self.ask_fields & self.ingest_fields:
            raise ConfigurationError(
                f"fields cannot be both ask and ingest fields: {', '.join(sorted(overlap))}"
            )
        if not 1 <= self.ipv6_prefix <= 128:
            raise ConfigurationError(f"ipv6_prefix must be 1..128, got {self.ipv6_prefix}")

    def bucket(self, limit: Limit) -> Bucket:
        return {"general": self.general, "ask": self.ask, "ingest": self.ingest}[limit]


@dataclass(frozen=True, slots=True)
class Take:
    """One take a request makes: ``cost`` tokens of ``bucket`` under ``key``."""

    limit: Limit
    scope: Scope
    key: str
    bucket: Bucket
    cost: int


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def address_id(client: str, ipv6_prefix: int = 64) -> str:
    """The bucket id of a client address: IPv4 as is, IPv4-mapped IPv6 as its IPv4,
    other IPv6 as its network of ``ipv6_prefix`` bits, anything else hashed."""
    text = client.strip()
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return "other:" + _digest(text)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        host_bits = 128 - ipv6_prefix
        network = ipaddress.IPv6Network(((int(ip) >> host_bits) << host_bits, ipv6_prefix))
        return str(network)
    return str(ip)


def principal_id(principal: Principal) -> str | None:
    """The bucket id of a credential's holder; None for local and open principals,
    which everybody shares."""
    if principal.kind not in _CREDENTIAL_KINDS:
        return None
    who = (
        principal.key_id if principal.kind == "api_key" and principal.key_id else principal.subject
    )
    return _digest(f"{principal.kind}\x00{who}")


def retry_after_seconds(retry_after: float) -> int:
    """``Retry-After`` in whole seconds (RFC 9110 delay-seconds), at least 1."""
    if not math.isfinite(retry_after):
        return 1
    return max(1, math.ceil(retry_after))


class RateLimits:
    """The policy over one RateLimiter, shared by every request of the process (the
    limiter holds the buckets; this object only the outage flag)."""

    def __init__(self, limiter: RateLimiter, settings: RateLimitSettings | None = None) -> None:
        self.limiter = limiter
        self.settings = settings or RateLimitSettings()
        self._degraded = False

    def plan(self, principal: Principal, client: str, fields: Iterable[str]) -> list[Take]:
        """The takes, in order, for an operation whose root fields are ``fields`` (one
        name per response key)."""
        s = self.settings
        if not s.enabled:
            return []
        counts = Counter(fields)
        costs: list[tuple[Limit, int]] = [("general", 1)]
        classes: tuple[tuple[Limit, frozenset[str]], ...] = (
            ("ask", s.ask_fields),
            ("ingest", s.ingest_fields),
        )
        for limit, names in classes:
            cost = sum(n for name, n in counts.items() if name in names)
            if cost:
                costs.append((limit, cost))
        ids: list[tuple[Scope, str]] = [("address", address_id(client, s.ipv6_prefix))]
        if (subject := principal_id(principal)) is not None:
            ids.append(("principal", subject))
        takes: list[Take] = []
        for limit, cost in costs:
            takes.extend(
                Take(limit, scope, f"{limit}:{_SCOPE_TAGS[scope]}:{ident}", s.bucket(limit), cost)
                for scope, ident in ids
            )
        return takes

    async def admit(self, principal: Principal, client: str, fields: Iterable[str]) -> None:
        """Take every bucket of ``plan`` in turn; RateLimitedError (``retry_after``,
        ``limit``, ``scope`` in its details) at the first refusal. A take whose cost
        exceeds its burst is BadInputError, raised when its turn comes, so such an
        operation still pays its general tokens first."""
        for take in self.plan(principal, client, fields):
            if take.cost > take.bucket.burst:
                raise BadInputError(
                    f"an operation may hold at most {take.bucket.burst} {_WHAT[take.limit]}; "
                    f"this one holds {take.cost}",
                    limit=take.limit,
                    cost=take.cost,
                    burst=take.bucket.burst,
                )
            try:
                decision = await self.limiter.take(take.key, take.bucket, take.cost)
            except UnavailableError as exc:
                self._outage(exc)
                if self.settings.fail_open:
                    return
                raise
            if self._degraded:
                self._degraded = False
                log.info("rate_limit.recovered")
            if not decision.allowed:
                seconds = retry_after_seconds(decision.retry_after)
                log.info(
                    "rate_limit.refused",
                    limit=take.limit,
                    scope=take.scope,
                    retry_after=round(decision.retry_after, 3),
                )
                raise RateLimitedError(
                    f"rate limit reached for {_WHAT[take.limit]} from {_WHO[take.scope]}: "
                    f"retry in {seconds} s",
                    retry_after=round(decision.retry_after, 3),
                    limit=take.limit,
                    scope=take.scope,
                )

    def _outage(self, exc: UnavailableError) -> None:
        if not self._degraded:
            self._degraded = True
            log.warning(
                "rate_limit.unavailable",
                error=exc.message,
                action="letting requests through" if self.settings.fail_open else "refusing",
            )
