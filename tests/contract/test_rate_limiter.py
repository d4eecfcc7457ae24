"""RateLimiter contract: one suite for every adapter in ``LIMITERS``, then what only the
Redis adapter promises (shared buckets, key layout, expiry, error translation).

Redis joins when ``KG_TEST_REDIS_URL`` names a running server (e.g.
``redis://127.0.0.1:6390/0``); without it the redis cases are skipped, saying why. Each
test gets its own random key prefix and deletes its keys afterwards.

Refill is tested two ways: with slow rates, where ``retry_after`` and ``remaining`` show
the refill to within the few milliseconds a test takes, and with one short real wait
that only ever sleeps longer than the limiter asked for.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio
import redis.exceptions

from app.adapters.memory_rate_limiter import MemoryRateLimiter
from app.adapters.redis_rate_limiter import RedisRateLimiter
from app.domain.errors import (
    BadInputError,
    ConfigurationError,
    UnavailableError,
)
from app.ports.rate_limiter import Bucket, RateLimiter
from tests.support.redis_keys import delete_keys

REDIS_URL_VAR = "KG_TEST_REDIS_URL"
SLOW = 0.01  # tokens per second: a test's own duration refills almost nothing
SLACK = 2.0  # seconds a test may take between two takes, far more than it does


def _redis_url() -> str:
    url = os.environ.get(REDIS_URL_VAR)
    if not url:
        pytest.skip(f"{REDIS_URL_VAR} is not set: no Redis server to run the redis rate limiter on")
    return url


async def _delete_prefix(url: str, prefix: str) -> None:
    await delete_keys(url, f"{prefix}*")


LimiterFactory = Callable[[], Awaitable[RateLimiter]]


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[LimiterFactory]:
    """Builds started limiters of one adapter; for Redis all on the same buckets."""
    built: list[RateLimiter] = []
    url = _redis_url() if request.param == "redis" else ""
    prefix = f"kgtest-rl-{uuid.uuid4().hex[:12]}:"

    async def factory() -> RateLimiter:
        limiter: RateLimiter
        if request.param == "redis":
            limiter = RedisRateLimiter(url, prefix=prefix)
        else:
            limiter = MemoryRateLimiter()
        await limiter.start()
        built.append(limiter)
        return limiter

    yield factory
    for limiter in built:
        await limiter.close()
    if url:
        await _delete_prefix(url, prefix)


@pytest.fixture
async def limiter(make_limiter: LimiterFactory) -> RateLimiter:
    return await make_limiter()


async def _drain(limiter: RateLimiter, key: str, bucket: Bucket) -> None:
    for _ in range(bucket.burst):
        assert (await limiter.take(key, bucket)).allowed


# --- the contract ---------------------------------------------------------------------


async def test_new_bucket_allows_burst_then_refuses(limiter: RateLimiter) -> None:
    bucket = Bucket(rate=SLOW, burst=5)
    decisions = [await limiter.take("client", bucket) for _ in range(5)]
    assert all(d.allowed and d.retry_after == 0 for d in decisions)
    assert [round(d.remaining) for d in decisions] == [4, 3, 2, 1, 0]

    refused = await limiter.take("client", bucket)
    assert not refused.allowed
    assert 1 / SLOW - SLACK < refused.retry_after <= 1 / SLOW
    assert refused.remaining == pytest.approx(0, abs=SLACK * SLOW)


async def test_retry_after_is_missing_tokens_over_rate(limiter: RateLimiter) -> None:
    bucket = Bucket(rate=0.5, burst=4)
    assert (await limiter.take("k", bucket, cost=4)).allowed
    refused = await limiter.take("k", bucket, cost=3)
    assert not refused.allowed
    # 3 tokens at 0.5 a second, less the little refilled since the first take.
    assert 6.0 - SLACK * 0.5 < refused.retry_after <= 6.0


async def test_bucket_refills_after_the_wait_it_names(limiter: RateLimiter) -> None:
    bucket = Bucket(rate=10.0, burst=1)
    assert (await limiter.take("k", bucket)).allowed
    refused = await limiter.take("k", bucket)
    assert not refused.allowed
    assert 0 < refused.retry_after <= 1 / 10.0
    await asyncio.sleep(refused.retry_after + 0.01)
    again = await limiter.take("k", bucket)
    assert again.allowed and again.retry_after == 0


async def test_refill_stops_at_burst(limiter: RateLimiter) -> None:
    bucket = Bucket(rate=1000.0, burst=3)
    assert (await limiter.take("k", bucket, cost=3)).allowed
    await asyncio.sleep(0.02)  # 20 tokens' worth of time for a bucket of 3
    decision = await limiter.take("k", bucket)
    assert decision.allowed
    assert decision.remaining == pytest.approx(2.0)


async def test_costs_above_one_and_fractional(limiter: RateLimiter) -> None:
    bucket = Bucket(rate=SLOW, burst=10)
    first = await limiter.take("k", bucket, cost=4)
    second = await limiter.take("k", bucket, cost=4.5)
    assert first.allowed and first.remaining == pytest.approx(6, abs=0.05)
    assert second.allowed and second.remaining == pytest.approx(1.5, abs=0.05)

    refused = await limiter.take("k", bucket, cost=4)
    assert not refused.allowed
    assert 2.5 / SLOW - SLACK < refused.retry_after <= 2.5 / SLOW

    last = await limiter.take("k", bucket, cost=1.5)
    assert last.allowed and last.remaining == pytest.approx(0, abs=0.05)


async def test_a_cost_above_the_burst_is_bad_input_and_takes_nothing(
    limiter: RateLimiter,
) -> None:
    bucket = Bucket(rate=SLOW, burst=10)
    with pytest.raises(BadInputError, match="never fit") as caught:
        await limiter.take("k", bucket, cost=10.5)
    assert caught.value.details == {"cost": 10.5, "burst": 10}
    whole = await limiter.take("k", bucket, cost=10)
    assert whole.allowed and whole.remaining == pytest.approx(0, abs=0.05)


async def test_refused_takes_take_nothing(limiter: RateLimiter) -> None:
    bucket = Bucket(rate=SLOW, burst=3)
    assert (await limiter.take("k", bucket, cost=2)).allowed
    for _ in range(5):
        refused = await limiter.take("k", bucket, cost=2)
        assert not refused.allowed
        assert refused.remaining == pytest.approx(1, abs=0.05)
    last = await limiter.take("k", bucket, cost=1)
    assert last.allowed and last.remaining == pytest.approx(0, abs=0.05)


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    bucket = Bucket(rate=SLOW, burst=2)
    keys = ["ip:2001:db8::1", "ip:2001:db8::2", "user:Zürich 東京", "ip:2001:db8::1 "]
    await _drain(limiter, keys[0], bucket)
    assert not (await limiter.take(keys[0], bucket)).allowed
    for other in keys[1:]:
        decision = await limiter.take(other, bucket)
        assert decision.allowed and decision.remaining == pytest.approx(1, abs=0.05)


async def test_concurrent_takes_get_exactly_the_burst(limiter: RateLimiter) -> None:
    bucket = Bucket(rate=SLOW, burst=10)
    decisions = await asyncio.gather(*(limiter.take("k", bucket) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10
    assert all(d.retry_after > 0 for d in decisions if not d.allowed)


@pytest.mark.parametrize(
    "bucket",
    [
        Bucket(rate=0, burst=1),
        Bucket(rate=-1, burst=1),
        Bucket(rate=math.nan, burst=1),
        Bucket(rate=math.inf, burst=1),
        Bucket(rate=1, burst=0),
        Bucket(rate=1, burst=-3),
        Bucket(rate=1, burst=2.5),  # type: ignore[arg-type]  # what a careless caller sends
    ],
    ids=repr,
)
async def test_bad_buckets_are_bad_input(limiter: RateLimiter, bucket: Bucket) -> None:
    with pytest.raises(BadInputError, match="bucket's"):
        await limiter.take("k", bucket)


@pytest.mark.parametrize("cost", [0, -1, math.nan, math.inf, -math.inf])
async def test_bad_costs_are_bad_input(limiter: RateLimiter, cost: float) -> None:
    with pytest.raises(BadInputError, match="cost"):
        await limiter.take("k", Bucket(rate=1, burst=5), cost)
    assert (await limiter.take("k", Bucket(rate=1, burst=5), 5)).allowed


@pytest.mark.parametrize("key", ["", "x" * 513])
async def test_bad_keys_are_bad_input(limiter: RateLimiter, key: str) -> None:
    with pytest.raises(BadInputError, match="key"):
        await limiter.take(key, Bucket(rate=1, burst=5))


async def test_take_needs_a_started_limiter(make_limiter: LimiterFactory) -> None:
    limiter = await make_limiter()
    await limiter.start()  # a second start changes nothing
    assert (await limiter.take("k", Bucket(rate=1, burst=1))).allowed
    await limiter.close()
    with pytest.raises(UnavailableError, match="not started") as caught:
        await limiter.take("k", Bucket(rate=1, burst=1))
    assert caught.value.retryable


# --- Redis only: one bucket for every process -----------------------------------------


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[str, str]]:
    url = _redis_url()
    prefix = f"kgtest-rl-{uuid.uuid4().hex[:12]}:"
    yield url, prefix
    await _delete_prefix(url, prefix)


async def test_redis_two_connections_share_one_bucket(redis_prefix: tuple[str, str]) -> None:
    url, prefix = redis_prefix
    first, second = RedisRateLimiter(url, prefix=prefix), RedisRateLimiter(url, prefix=prefix)
    await first.start()
    await second.start()
    try:
        bucket = Bucket(rate=SLOW, burst=10)
        decisions = await asyncio.gather(
            *(limiter.take("k", bucket) for _ in range(25) for limiter in (first, second))
        )
        assert sum(d.allowed for d in decisions) == 10
        assert not (await first.take("k", bucket)).allowed
        assert not (await second.take("k", bucket)).allowed
    finally:
        await first.close()
        await second.close()


async def test_redis_bucket_layout_and_expiry() -> None:
    """Default prefix, a hash of tokens and server time, expiring when full again."""
    url = _redis_url()
    key = f"kgtest-{uuid.uuid4().hex}"
    limiter = RedisRateLimiter(url)
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    await limiter.start()
    try:
        assert (await limiter.take(key, Bucket(rate=1.0, burst=10), cost=3)).allowed
        stored = await client.hgetall(f"kg:rl:{key}")
        assert set(stored) == {"tokens", "ts"}
        assert float(stored["tokens"]) == pytest.approx(7.0)
        seconds, micros = await client.time()
        assert float(stored["ts"]) == pytest.approx(seconds + micros / 1e6, abs=SLACK)
        assert 3000 - SLACK * 1000 < await client.pttl(f"kg:rl:{key}") <= 3000
    finally:
        await client.delete(f"kg:rl:{key}")
        await client.aclose()
        await limiter.close()


async def test_redis_forgets_a_bucket_once_it_is_full_again(
    redis_prefix: tuple[str, str],
) -> None:
    url, prefix = redis_prefix
    limiter = RedisRateLimiter(url, prefix=prefix)
    client = redis.asyncio.Redis.from_url(url)
    await limiter.start()
    try:
        bucket = Bucket(rate=1000.0, burst=5)
        assert (await limiter.take("k", bucket, cost=5)).allowed
        assert await client.pttl(f"{prefix}k") <= 5  # -2 if already gone
        await asyncio.sleep(0.05)
        assert await client.exists(f"{prefix}k") == 0
        fresh = await limiter.take("k", bucket)
        assert fresh.allowed and fresh.remaining == pytest.approx(4)
    finally:
        await client.aclose()
        await limiter.close()


async def test_redis_failure_of_a_take_is_unavailable(redis_prefix: tuple[str, str]) -> None:
    url, prefix = redis_prefix
    client = redis.asyncio.Redis.from_url(url)
    limiter = RedisRateLimiter(url, prefix=prefix)
    await limiter.start()
    try:
        await client.set(f"{prefix}k", "not a hash")
        with pytest.raises(UnavailableError, match="WRONGTYPE") as caught:
            await limiter.take("k", Bucket(rate=1, burst=1))
        assert caught.value.retryable
        assert isinstance(caught.value.__cause__, redis.exceptions.ResponseError)
    finally:
        await client.aclose()
        await limiter.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_redis_unreachable_at_start_is_unavailable() -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{_free_port()}/0", timeout=0.5)
    with pytest.raises(UnavailableError, match="unreachable"):
        await limiter.start()
    with pytest.raises(UnavailableError, match="not started"):
        await limiter.take("k", Bucket(rate=1, burst=1))


async def test_redis_refused_credentials_are_configuration_errors() -> None:
    parts = urlsplit(_redis_url())
    url = urlunsplit(parts._replace(netloc=f"nobody:s3cret-pw@{parts.hostname}:{parts.port}"))
    with pytest.raises(ConfigurationError, match="credentials") as caught:
        await RedisRateLimiter(url).start()
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:6379/0", "redis://127.0.0.1:6379/notadb", "redis://h:port/0"]
)
def test_redis_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisRateLimiter(url)
