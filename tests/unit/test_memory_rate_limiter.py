"""The in-process token bucket on a clock the test moves: exact refill arithmetic, and
memory that stays bounded whatever keys arrive."""

from __future__ import annotations

import pytest

from app.adapters.memory_rate_limiter import MemoryRateLimiter
from app.domain.errors import ConfigurationError
from app.ports.rate_limiter import Bucket, Decision


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _limiter(clock: Clock, max_keys: int = 1000) -> MemoryRateLimiter:
    limiter = MemoryRateLimiter(max_keys=max_keys, clock=clock)
    await limiter.start()
    return limiter


async def test_refill_arithmetic_is_exact() -> None:
    clock = Clock()
    limiter = await _limiter(clock)
    bucket = Bucket(rate=2.0, burst=4)
    remaining = [(await limiter.take("k", bucket)).remaining for _ in range(4)]
    assert remaining == [3.0, 2.0, 1.0, 0.0]

    assert await limiter.take("k", bucket) == Decision(False, 0.5, 0.0)
    clock.now = 0.25
    assert await limiter.take("k", bucket) == Decision(False, 0.25, 0.5)
    clock.now = 0.5
    assert await limiter.take("k", bucket) == Decision(True, 0.0, 0.0)
    clock.now = 1000.0  # long idle: full, never more
    assert await limiter.take("k", bucket, cost=1.5) == Decision(True, 0.0, 2.5)


async def test_a_refill_short_by_rounding_still_allows() -> None:
    """(0.7 + 1/3 - 0.7) * 3 is 0.9999999999999998 in floats: one whole token."""
    clock = Clock(0.7)
    limiter = await _limiter(clock)
    bucket = Bucket(rate=3.0, burst=1)
    assert (await limiter.take("k", bucket)).allowed
    clock.now = 0.7 + 1 / 3
    decision = await limiter.take("k", bucket)
    assert decision.allowed and decision.remaining == 0.0


async def test_a_clock_going_back_adds_nothing() -> None:
    clock = Clock(10.0)
    limiter = await _limiter(clock)
    bucket = Bucket(rate=1.0, burst=1)
    assert (await limiter.take("k", bucket)).allowed
    clock.now = 5.0
    assert await limiter.take("k", bucket) == Decision(False, 1.0, 0.0)
    clock.now = 6.0  # refill counts from the last take, at 5.0
    assert (await limiter.take("k", bucket)).allowed


async def test_buckets_full_again_are_dropped_as_new_ones_come() -> None:
    clock = Clock()
    limiter = await _limiter(clock)
    bucket = Bucket(rate=10.0, burst=1)
    for n in range(50):
        await limiter.take(f"old-{n}", bucket)
    assert len(limiter) == 50
    clock.now = 1.0  # every old bucket is full again: forgetting them loses nothing
    for n in range(25):
        await limiter.take(f"new-{n}", bucket)
    assert len(limiter) == 25


async def test_a_flood_of_keys_stays_within_max_keys_and_spares_the_active() -> None:
    clock = Clock()
    limiter = await _limiter(clock, max_keys=100)
    slow = Bucket(rate=0.001, burst=1)
    assert (await limiter.take("abuser", slow)).allowed
    for n in range(10_000):
        clock.now += 0.001
        await limiter.take(f"flood-{n}", slow)
        if n % 50 == 0:  # the abuser keeps knocking and stays refused
            assert not (await limiter.take("abuser", slow)).allowed
        assert len(limiter) <= 100


async def test_an_evicted_bucket_comes_back_full() -> None:
    """The documented cost of the bound: the longest-idle owner is treated leniently."""
    clock = Clock()
    limiter = await _limiter(clock, max_keys=2)
    slow = Bucket(rate=0.001, burst=1)
    for key in ("a", "b", "c"):
        assert (await limiter.take(key, slow)).allowed
    assert len(limiter) == 2
    assert (await limiter.take("a", slow)).allowed  # "a" was evicted for "c"
    assert not (await limiter.take("c", slow)).allowed


async def test_close_forgets_and_start_begins_empty() -> None:
    clock = Clock()
    limiter = await _limiter(clock)
    bucket = Bucket(rate=0.001, burst=1)
    assert (await limiter.take("k", bucket)).allowed
    await limiter.close()
    assert len(limiter) == 0
    await limiter.start()
    assert (await limiter.take("k", bucket)).allowed


@pytest.mark.parametrize("max_keys", [0, -1])
def test_max_keys_must_be_positive(max_keys: int) -> None:
    with pytest.raises(ConfigurationError, match="max_keys"):
        MemoryRateLimiter(max_keys=max_keys)
