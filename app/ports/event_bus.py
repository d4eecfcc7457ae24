"""EventBus: ingestion requests to workers, ingestion events to every API process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from app.domain.models import IngestionEvent, IngestionRequest


class Delivery(Protocol):
    """A request handed to a worker; ``ack`` after the document is fully stored."""

    request: IngestionRequest

    @property
    def moved(self) -> bool:
        """The bus has since given this request to another consumer (a rebalance): it
        will be delivered there, so a worker that has not started it should skip it
        (without ``ack``) rather than do the work twice."""

    async def ack(self) -> None: ...


class EventBus(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish_request(self, request: IngestionRequest) -> None: ...

    def requests(self) -> AsyncIterator[Delivery]:
        """Requests for this worker, until the bus closes."""

    async def publish_event(self, event: IngestionEvent) -> None: ...

    def events(self) -> AsyncIterator[IngestionEvent]:
        """Every event published from now on, until the bus closes or the consumer stops.

        The subscription is registered when ``events()`` returns, before the first
        ``__anext__``: an event published right after the call is not lost (a subscriber
        reads the job's state after subscribing, and relies on this).
        """
