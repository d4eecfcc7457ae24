"""RateLimiter: token buckets keyed by who is asking, shared by processes when stored
in Redis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Bucket:
    """``rate`` tokens per second flow into a bucket holding at most ``burst``."""

    rate: float
    burst: int


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the request may go on; when not, seconds until it could (``Retry-After``);
    ``remaining``: tokens left after this request."""

    allowed: bool
    retry_after: float
    remaining: float


class RateLimiter(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def take(self, key: str, bucket: Bucket, cost: float = 1.0) -> Decision:
        """Take ``cost`` tokens from the bucket named ``key`` (full when new), atomically:
        two processes taking the last token at once cannot both get it. A refused take
        takes nothing."""
