"""``kg worker``: an ingestion worker process, one member of the bus's consumer group."""

from __future__ import annotations

import asyncio
import signal
from urllib.parse import urlsplit

import structlog

from app.config import load_settings
from app.container import build_container
from app.domain.errors import ConfigurationError
from app.observability.logging import configure_logging

log = structlog.get_logger(__name__)


async def run_worker() -> int:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)
    if urlsplit(settings.bus_url).scheme == "memory":
        raise ConfigurationError(
            "kg worker needs a shared bus (KG_BUS_URL=kafka://...): with memory:// the "
            "server runs its own in-process workers"
        )
    container = build_container(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await container.start(workers=False)
    await container.wait_ready()
    worker = asyncio.create_task(container.worker.run())
    log.info("worker.started", bus=settings.bus_url)
    try:
        await stop.wait()
    finally:
        worker.cancel()
        await container.close()
    return 0
