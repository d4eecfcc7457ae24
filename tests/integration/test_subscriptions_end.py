"""A subscription that a client leaves is removed from the bus at once (no leak of
subscriber queues on a long-running server)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.adapters.memory_event_bus import MemoryEventBus
from app.config import load_settings
from app.container import build_container


async def test_leaving_clients_unsubscribe(tmp_path: Path) -> None:
    bus = MemoryEventBus()
    container = build_container(load_settings(data_dir=tmp_path), bus=bus)
    await bus.start()
    await container.jobs.start()
    try:
        streams = [container.ingestion.all_events() for _ in range(3)]
        readers = [asyncio.create_task(anext(s)) for s in streams]
        await asyncio.sleep(0.05)
        assert bus.subscriber_count == 3
        for reader in readers:  # the clients go away mid-wait
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for stream in streams:
            await stream.aclose()
        assert bus.subscriber_count == 0
    finally:
        await container.jobs.close()
        await bus.close()
