"""Shared pieces of the Kafka adapters: driver error translation and quiet shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import structlog

# aiokafka ships no type information (no py.typed); its objects are Any here.
from aiokafka.errors import (  # type: ignore[import-untyped]
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NoBrokersAvailable,
    NodeNotReadyError,
    RequestTimedOutError,
)

from app.domain.errors import (
    BackendError,
    BadInputError,
    KGError,
    UnavailableError,
)

log = structlog.get_logger(__name__)

_UNAVAILABLE = (
    KafkaConnectionError,
    NoBrokersAvailable,
    KafkaTimeoutError,
    RequestTimedOutError,
    NodeNotReadyError,
    TimeoutError,
)
_REFUSED_SETTINGS = {37, 38, 40, 44}  # invalid partitions, replication, config; policy


def kafka_error(exc: BaseException, action: str, where: str) -> KGError:
    """Our error for a driver failure while ``action`` against ``where``."""
    detail = str(exc) or type(exc).__name__
    if type(exc) is TimeoutError:
        detail = "no answer in time"
    if isinstance(exc, MessageSizeTooLargeError):
        return BadInputError(f"a message is too large for the Kafka bus at {where}: {detail}")
    if isinstance(exc, _UNAVAILABLE):
        return UnavailableError(f"Kafka at {where} is unavailable while {action}: {detail}")
    retryable = bool(getattr(exc, "retriable", False))
    return BackendError(f"Kafka at {where} failed while {action}: {detail}", retryable=retryable)


@contextlib.contextmanager
def _translated(action: str, where: str) -> Iterator[None]:
    try:
        yield
    except KGError:
        raise
    except (KafkaError, TimeoutError) as exc:
        raise kafka_error(exc, action, where) from exc


async def _stop_quietly(client: Any, what: str, within: float = 10.0) -> None:
    """Stop or close an aiokafka client; a failure is logged (we are leaving anyway)."""
    stop = getattr(client, "stop", None) or client.close
    try:
        async with asyncio.timeout(within):
            await stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # we are being cancelled
        # aiokafka's fetcher re-raises the cancellation of its own fetch tasks on close
        # (the broker is gone), before the consumer closes its connections: close them.
        log.warning("event_bus.stop_failed", client=what, error="cancelled inside aiokafka")
        inner = getattr(client, "_client", None)
        if inner is not None:
            with contextlib.suppress(Exception):
                await inner.close()
    except Exception as exc:  # TimeoutError too
        log.warning("event_bus.stop_failed", client=what, error=str(exc) or type(exc).__name__)
