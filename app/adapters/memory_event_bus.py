"""EventBus inside one process: the embedded default (``KG_BUS_URL=memory://``).

Requests go through one bounded FIFO shared by every ``requests()`` consumer, so each
request is handed to exactly one worker; ``publish_request`` waits while the queue is
full (back-pressure on ``ingestDocument``). Events are broadcast: each ``events()``
iterator has its own bounded queue. A subscriber that falls ``max_queue`` events behind
loses the newer events (counted in ``kg_event_bus_dropped_events_total`` and logged);
it never slows the publisher or the other subscribers. ``publish_event`` does yield to
the event loop once, so subscribers drain while a publisher emits in a tight loop.

Subscription guarantee: ``events()`` registers the subscriber when it is *called*, not
when iteration starts, so an event published between ``it = bus.events()`` and the
first ``await anext(it)`` is delivered. The ``ingestionProgress`` subscription relies on
this: subscribe, then read the job's current state, then iterate.

``close()`` ends every iterator at once (``async for`` loops exit normally); requests and
events not yet taken are discarded, as nothing in memory outlives the process anyway.
Publishing on a closed bus raises ``UnavailableError``. Delivery ``ack`` has nothing to
commit here; the bus counts unacknowledged deliveries (``unacked``) so tests can check
that workers acknowledge.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from typing import Generic, TypeVar

from app.domain.errors import BadInputError, UnavailableError
from app.domain.models import IngestionEvent, IngestionRequest
from app.observability.logging import get_logger
from app.observability.metrics import EVENTS_DROPPED

T = TypeVar("T")

log = get_logger(__name__)


class _ClosedError(Exception):
    """Raised inside the bus when a channel is closed."""


class _Channel(Generic[T]):
    """A bounded FIFO that can be closed; every waiter wakes up when it is.

    Wake-ups use events that waiters re-check in a loop: checking, clearing and waiting
    happen without an await in between, so no wake-up is lost on one event loop.
    """

    def __init__(self, maxsize: int) -> None:
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: T) -> bool:
        """Add without waiting; False when full."""
        if self.closed:
            raise _ClosedError
        if len(self._items) >= self._maxsize:
            return False
        self._items.append(item)
        self._not_empty.set()
        return True

    async def put(self, item: T) -> None:
        """Add, waiting while the channel is full."""
        while not self.offer(item):
            self._not_full.clear()
            await self._not_full.wait()

    async def get(self) -> T:
        """Take the oldest item, waiting while empty; ``_ClosedError`` once closed."""
        while True:
            if self.closed:
                raise _ClosedError
            if self._items:
                item = self._items.popleft()
                self._not_full.set()
                return item
            self._not_empty.clear()
            await self._not_empty.wait()

    def close(self) -> None:
        self.closed = True
        self._items.clear()
        self._not_empty.set()
        self._not_full.set()


class MemoryDelivery:
    """A request handed to one consumer."""

    __slots__ = ("_bus", "acked", "request")

    def __init__(self, request: IngestionRequest, bus: MemoryEventBus) -> None:
        self.request = request
        self.acked = False
        self._bus = bus

    @property
    def moved(self) -> bool:
        return False  # one process: a request never moves

    async def ack(self) -> None:
        """Nothing to commit in memory; marks the delivery done (idempotent)."""
        if not self.acked:
            self.acked = True
            self._bus._unacked -= 1


class _Requests:
    """``requests()``: deliveries from the shared queue until the bus closes."""

    def __init__(self, bus: MemoryEventBus) -> None:
        self._bus = bus

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> MemoryDelivery:
        try:
            request = await self._bus._requests.get()
        except _ClosedError:
            raise StopAsyncIteration from None
        self._bus._unacked += 1
        return MemoryDelivery(request, self._bus)


class EventSubscription:
    """One ``events()`` subscriber, registered from construction until closed."""

    def __init__(self, bus: MemoryEventBus, maxsize: int) -> None:
        self._bus = bus
        self._channel: _Channel[IngestionEvent] = _Channel(maxsize)
        self.dropped = 0
        if bus.closed:
            self._channel.close()
        else:
            bus._subscribers.add(self)

    def __aiter__(self) -> EventSubscription:
        return self

    async def __anext__(self) -> IngestionEvent:
        try:
            return await self._channel.get()
        except _ClosedError:
            self._bus._subscribers.discard(self)
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop receiving events (also what ``contextlib.aclosing`` calls)."""
        self._end()

    def _deliver(self, event: IngestionEvent) -> None:
        if self._channel.closed:
            return
        if self._channel.offer(event):
            return
        self.dropped += 1
        EVENTS_DROPPED.inc()
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning(
                "event_bus.subscriber_lagging",
                dropped=self.dropped,
                queued=len(self._channel),
                job_id=event.job_id,
            )

    def _end(self) -> None:
        self._channel.close()
        self._bus._subscribers.discard(self)


class MemoryEventBus:
    """The in-process EventBus; see the module docstring for its guarantees."""

    def __init__(self, max_queue: int = 10_000) -> None:
        if max_queue < 1:
            raise BadInputError(f"max_queue must be at least 1, got {max_queue}")
        self._max_queue = max_queue
        self._requests: _Channel[IngestionRequest] = _Channel(max_queue)
        # Weak: a subscriber dropped without aclose() stops receiving when collected.
        self._subscribers: weakref.WeakSet[EventSubscription] = weakref.WeakSet()
        self._unacked = 0
        self.closed = False

    async def start(self) -> None:
        """Nothing to connect; the bus is usable from construction."""

    async def close(self) -> None:
        self.closed = True
        self._requests.close()
        for subscriber in list(self._subscribers):
            subscriber._end()

    async def publish_request(self, request: IngestionRequest) -> None:
        try:
            await self._requests.put(request)
        except _ClosedError:
            raise UnavailableError("the event bus is closed") from None

    def requests(self) -> _Requests:
        return _Requests(self)

    async def publish_event(self, event: IngestionEvent) -> None:
        if self.closed:
            raise UnavailableError("the event bus is closed")
        for subscriber in list(self._subscribers):
            subscriber._deliver(event)
        # Never waits for subscribers, but yields once so they can drain their queues
        # while a publisher emits in a tight loop.
        await asyncio.sleep(0)

    def events(self) -> EventSubscription:
        """A subscription, registered now: events published after this call reach it."""
        return EventSubscription(self, self._max_queue)

    @property
    def unacked(self) -> int:
        """Deliveries handed out and not yet acknowledged."""
        return self._unacked

    @property
    def pending_requests(self) -> int:
        """Requests published and not yet taken by a consumer."""
        return len(self._requests)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
