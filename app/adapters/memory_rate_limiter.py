"""RateLimiter in process: token buckets in a dict, for one process (``memory://``).

A bucket is ``(tokens, updated_at)`` on a monotonic clock; a take first refills it by
the time elapsed (``rate`` tokens a second, at most ``burst``), then takes ``cost`` if
that many are there. The check and the take run without an ``await`` between them, so
concurrent takes on one event loop cannot both get the last token. A refused take takes
nothing and says how long until ``cost`` tokens are there (``retry_after``).

Memory stays bounded whatever the callers send: buckets are kept in least-recently-used
order, each take drops up to ``_SWEEP`` of the oldest ones that have refilled (a full
bucket is the same as none, so that loses nothing), and past ``max_keys`` the least
recently used bucket goes even if not full (its owner, idle the longest, gets a full
bucket back: lenient, never stricter). A flood of distinct keys therefore costs at most
``max_keys`` entries and cannot evict a bucket that is in active use unless the flood
alone outnumbers ``max_keys`` between two of its takes. The default bound, 100,000
buckets keyed by IPv6 addresses, holds about 30 MB.

The checks shared with the Redis adapter live here (``check_take``): a bucket needs a
finite ``rate`` > 0 and an integer ``burst`` >= 1; ``cost`` must be finite, > 0 and at
most ``burst``. A cost above the burst could never be allowed, so it is a
``BadInputError`` rather than a refusal whose ``retry_after`` would be a lie.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.domain.errors import BadInputError, ConfigurationError, UnavailableError
from app.ports.rate_limiter import Bucket, Decision

DEFAULT_MAX_KEYS = 100_000
MAX_KEY_CHARS = 512
# Float refills drift by a few ulps (1 / 3 * 3 < 1); a take this close to enough passes.
TOLERANCE = 1e-9
_SWEEP = 2  # refilled buckets dropped per take, oldest first: O(1) per take


def check_take(key: str, bucket: Bucket, cost: float) -> None:
    """Refuse what no bucket could serve, with a message naming the bad value."""
    if not key:
        raise BadInputError("a rate-limit key must not be empty")
    if len(key) > MAX_KEY_CHARS:
        raise BadInputError(f"a rate-limit key has at most {MAX_KEY_CHARS} characters")
    if not (math.isfinite(bucket.rate) and bucket.rate > 0):
        raise BadInputError(f"a bucket's rate must be a finite number > 0, got {bucket.rate}")
    if isinstance(bucket.burst, bool) or not isinstance(bucket.burst, int) or bucket.burst < 1:
        raise BadInputError(f"a bucket's burst must be an integer >= 1, got {bucket.burst!r}")
    if not (math.isfinite(cost) and cost > 0):
        raise BadInputError(f"a take's cost must be a finite number > 0, got {cost}")
    if cost > bucket.burst:
        raise BadInputError(
            f"a take of {cost} tokens can never fit a bucket holding at most {bucket.burst}",
            cost=cost,
            burst=bucket.burst,
        )


@dataclass(slots=True)
class _State:
    tokens: float
    updated_at: float
    full_at: float  # when it holds ``burst`` again: from then on it can be dropped


class MemoryRateLimiter:
    """Token buckets for this process only; ``clock`` (seconds, never going back) is
    injectable for tests."""

    def __init__(
        self,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ConfigurationError(f"max_keys must be at least 1, got {max_keys}")
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _State] | None = None

    async def start(self) -> None:
        """Begin with no buckets; a second call keeps them."""
        if self._buckets is None:
            self._buckets = OrderedDict()

    async def close(self) -> None:
        self._buckets = None

    def __len__(self) -> int:
        """Buckets held now (for tests and metrics)."""
        return 0 if self._buckets is None else len(self._buckets)

    async def take(self, key: str, bucket: Bucket, cost: float = 1.0) -> Decision:
        check_take(key, bucket, cost)
        buckets = self._started()
        now = self._clock()
        state = buckets.get(key)
        if state is None:
            tokens = float(bucket.burst)
        else:
            elapsed = max(0.0, now - state.updated_at)
            tokens = min(float(bucket.burst), state.tokens + elapsed * bucket.rate)
            buckets.move_to_end(key)
        allowed = tokens + TOLERANCE >= cost
        if allowed:
            tokens = max(0.0, tokens - cost)
        full_at = now + (bucket.burst - tokens) / bucket.rate
        buckets[key] = _State(tokens, now, full_at)
        self._evict(buckets, now)
        retry_after = 0.0 if allowed else (cost - tokens) / bucket.rate
        return Decision(allowed=allowed, retry_after=retry_after, remaining=tokens)

    def _started(self) -> OrderedDict[str, _State]:
        if self._buckets is None:
            raise UnavailableError("the in-process rate limiter is not started")
        return self._buckets

    def _evict(self, buckets: OrderedDict[str, _State], now: float) -> None:
        """Drop a few refilled buckets from the idle end, then whatever exceeds the bound."""
        for _ in range(_SWEEP):
            oldest = next(iter(buckets.values()))
            if oldest.full_at > now:
                break
            buckets.popitem(last=False)
            if not buckets:
                return
        while len(buckets) > self.max_keys:
            buckets.popitem(last=False)
