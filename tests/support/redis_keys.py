"""Removing what a test wrote to a shared Redis, by key pattern."""

from __future__ import annotations

import redis.asyncio


async def delete_keys(url: str, *patterns: str) -> None:
    """Delete every key matching any of ``patterns`` (``SCAN MATCH`` globs)."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        for pattern in patterns:
            keys = [key async for key in client.scan_iter(match=pattern, count=500)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()
