"""RateLimiter on Redis: token buckets every API process shares.

Each bucket is one hash, ``kg:rl:<key>`` (the prefix is configurable), holding
``tokens`` and ``ts`` (seconds, the Redis server's clock). One Lua script reads it,
refills it by the time elapsed since ``ts`` (``rate`` tokens a second, at most
``burst``; a missing hash is a full bucket), takes ``cost`` if that many are there, and
writes it back, so the check and the take are one atomic step for every client. The
clock is the server's ``TIME``, so processes with skewed clocks still agree; should it
step back, the step adds no tokens and refill counts on from the next take (every take,
refused or not, writes the bucket back with the current time).

The hash expires when the bucket would be full again (``(burst - tokens) / rate``),
which loses nothing, since a full bucket and a missing one are the same: Redis holds
only buckets in use. One key per script call, so Redis Cluster works too.

Values travel as ``%.17g`` text both ways (Lua numbers are doubles; Redis would cut a
number returned from Lua to an integer). Inputs are checked as the in-process adapter
checks them (``check_take``): bad buckets and costs above the burst are
``BadInputError`` before any round trip.

Errors: at ``start`` refused credentials are ``ConfigurationError`` and an unreachable
server ``UnavailableError``; a failed ``take`` is always ``UnavailableError`` (retryable),
so callers decide in one place whether to let requests through while Redis is away.
A take is retried once on a dropped connection; if its first attempt ran but the reply
was lost, it may have taken ``cost`` twice, which only errs on the strict side.
"""

from __future__ import annotations

import asyncio

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript

from app.adapters.memory_rate_limiter import TOLERANCE, check_take
from app.adapters.redis_support import check_url, connect
from app.domain.errors import BackendError, ConfigurationError, UnavailableError
from app.ports.rate_limiter import Bucket, Decision

DEFAULT_PREFIX = "kg:rl:"
_MAX_TTL_MS = 2**40  # about 35 years; Redis refuses expiry times that overflow

# KEYS: the bucket. ARGV: rate, burst, cost. Returns {allowed 1|0, retry_after, tokens}.
_TAKE = f"""
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens = burst
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
if state[1] and state[2] then
  local elapsed = math.max(0, now - tonumber(state[2]))
  tokens = math.min(burst, tonumber(state[1]) + elapsed * rate)
end
local allowed = 0
local retry_after = 0
if tokens + {TOLERANCE!r} >= cost then
  allowed = 1
  tokens = math.max(0, tokens - cost)
else
  retry_after = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'ts', string.format('%.17g', now))
local ttl = math.min(math.max(1, math.ceil((burst - tokens) / rate * 1000)), {_MAX_TTL_MS})
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return {{allowed, string.format('%.17g', retry_after), string.format('%.17g', tokens)}}
"""


class RedisRateLimiter:
    """Token buckets in Redis at ``url`` (``redis://`` or ``rediss://``, db in the path),
    under keys ``<prefix><key>``."""

    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, timeout: float = 1.0) -> None:
        if not prefix:
            raise ConfigurationError("the rate-limit key prefix must not be empty")
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout}")
        self.where, self._secret = check_url(url)
        self.prefix = prefix
        self._url = url
        self._timeout = timeout
        self._client: redis.asyncio.Redis | None = None
        self._take: AsyncScript | None = None
        self._lifecycle = asyncio.Lock()

    async def start(self) -> None:
        """Connect and PING; a second call does nothing."""
        async with self._lifecycle:
            if self._client is not None:
                return
            client = await connect(
                self._url,
                self._timeout,
                Retry(ExponentialBackoff(cap=0.1, base=0.01), 1),
                self.where,
                self._secret,
            )
            self._client = client
            self._take = client.register_script(_TAKE)

    async def close(self) -> None:
        async with self._lifecycle:
            client, self._client, self._take = self._client, None, None
            if client is not None:
                try:
                    await client.aclose()
                except (redis.exceptions.RedisError, TimeoutError) as exc:
                    raise self._unavailable(exc, "closing the rate limiter") from exc

    async def take(self, key: str, bucket: Bucket, cost: float = 1.0) -> Decision:
        check_take(key, bucket, cost)
        if self._take is None:
            raise UnavailableError("the Redis rate limiter is not started")
        args = [repr(float(bucket.rate)), str(bucket.burst), repr(float(cost))]
        try:
            reply = await self._take(keys=[self.prefix + key], args=args)
        except (redis.exceptions.RedisError, TimeoutError) as exc:
            raise self._unavailable(exc, "taking from a rate-limit bucket") from exc
        return self._decision(reply)

    def _decision(self, reply: object) -> Decision:
        try:
            if not isinstance(reply, list) or len(reply) != 3:
                raise TypeError("expected a list of 3 items")
            allowed, retry_after, tokens = reply
            return Decision(
                allowed=int(allowed) == 1, retry_after=float(retry_after), remaining=float(tokens)
            )
        except (TypeError, ValueError) as exc:
            raise BackendError(
                f"Redis at {self.where} gave a malformed rate-limit reply: {reply!r}"
            ) from exc

    def _unavailable(self, exc: Exception, action: str) -> UnavailableError:
        """Every driver failure of a take, as one retryable error; no password in it."""
        detail = str(exc) or type(exc).__name__
        if self._secret:
            detail = detail.replace(self._secret, "***")
        return UnavailableError(f"Redis at {self.where} failed while {action}: {detail}")
