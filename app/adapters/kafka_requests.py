"""The requests side of the Kafka bus: one group consumer per process, deliveries and
the contiguous offset commits that make acknowledgement safe out of order."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

# aiokafka ships no type information (no py.typed); its objects are Any here.
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    ConsumerRebalanceListener,
    TopicPartition,
)
from aiokafka.errors import (  # type: ignore[import-untyped]
    ConsumerStoppedError,
    IllegalOperation,
    KafkaError,
)

from app.adapters.kafka_codec import (
    decode_request,
    request_id_of,
)
from app.adapters.kafka_support import _stop_quietly, _translated
from app.domain.errors import (
    BackendError,
)
from app.domain.models import IngestionRequest
from app.observability.logging import bind_request_id, clear_request_id

if TYPE_CHECKING:  # the bus owns the reader; imported for types only (no cycle at run time)
    from app.adapters.kafka_event_bus import KafkaEventBus

T = TypeVar("T")
log = structlog.get_logger(__name__)

_JOIN_TIMEOUT = 30.0  # seconds for the first group join of a requests consumer


class ContiguousCommits:
    """Per partition, the offset a consumer may commit: one past the longest prefix of
    its deliveries (in delivery order) that are all acknowledged. Pure bookkeeping.

    Each partition has an epoch; ``revoke`` starts a new one and forgets the partition,
    so an acknowledgement of a delivery made before the partition moved is ignored."""

    def __init__(self) -> None:
        self._order: dict[int, deque[int]] = {}  # delivered, not yet committable
        self._waiting: dict[int, set[int]] = {}  # delivered, not acknowledged
        self._epoch: dict[int, int] = {}
        self._commit: dict[int, int] = {}

    def delivered(self, partition: int, offset: int) -> int:
        """Note a delivery; returns the epoch to give back to ``acked``."""
        order = self._order.setdefault(partition, deque())
        if (order and offset <= order[-1]) or offset < self._commit.get(partition, 0):
            raise ValueError(f"offset {offset} of partition {partition} delivered out of order")
        order.append(offset)
        self._waiting.setdefault(partition, set()).add(offset)
        return self._epoch.get(partition, 0)

    def acked(self, partition: int, offset: int, epoch: int) -> int | None:
        """Note an acknowledgement; the new commit offset when the prefix grew, else None
        (also for a repeated or stale acknowledgement)."""
        waiting = self._waiting.get(partition)
        if epoch != self._epoch.get(partition, 0) or not waiting or offset not in waiting:
            return None
        waiting.remove(offset)
        order = self._order[partition]
        advanced: int | None = None
        while order and order[0] not in waiting:
            advanced = order.popleft() + 1
        if advanced is not None:
            self._commit[partition] = advanced
        return advanced

    def committable(self, partition: int) -> int | None:
        return self._commit.get(partition)

    def outstanding(self, partition: int) -> int:
        """Deliveries of the partition not yet covered by the commit offset."""
        return len(self._order.get(partition, ()))

    def epoch(self, partition: int) -> int:
        return self._epoch.get(partition, 0)

    def revoke(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._epoch[partition] = self._epoch.get(partition, 0) + 1
            for table in (self._order, self._waiting, self._commit):
                table.pop(partition, None)


class KafkaDelivery:
    """A request from the requests topic; ``ack`` commits as far as contiguity allows."""

    __slots__ = ("_epoch", "_reader", "acked", "offset", "partition", "request")

    def __init__(
        self,
        request: IngestionRequest,
        partition: int,
        offset: int,
        epoch: int,
        reader: _RequestReader,
    ) -> None:
        self.request = request
        self.partition = partition
        self.offset = offset
        self.acked = False
        self._epoch = epoch
        self._reader = reader

    @property
    def moved(self) -> bool:
        """Its partition was revoked since (even if assigned back: then the request comes
        again, as a new delivery)."""
        return self._reader.epoch(self.partition) != self._epoch

    async def ack(self) -> None:
        """Idempotent; never raises for a failed commit (that only means redelivery)."""
        if not self.acked:
            self.acked = True
            await self._reader.ack(self.partition, self.offset, self._epoch)


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, reader: _RequestReader) -> None:
        self._reader = reader

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        self._reader.revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        self._reader.assigned({tp.partition for tp in assigned})


class _RequestReader:
    """The process's one group consumer of the requests topic, started on first use."""

    def __init__(self, bus: KafkaEventBus) -> None:
        self._bus = bus
        self._consumer: Any = None
        self._tracker = ContiguousCommits()
        self._committed: dict[int, int] = {}
        self._start_lock = asyncio.Lock()
        self._fetch_lock = asyncio.Lock()
        self._commit_lock = asyncio.Lock()
        self.partitions: frozenset[int] = frozenset()

    async def next_delivery(self) -> KafkaDelivery:
        consumer = await self._started()
        async with self._fetch_lock:
            while True:
                with _translated("reading requests", self._bus.where):
                    record = await consumer.getone()
                epoch = self._delivered(record.partition, record.offset)
                request_id = request_id_of(record.headers)
                try:
                    request = decode_request(record.value, request_id)
                except BackendError as exc:  # unreadable by any worker: skip it, logged
                    log.error(
                        "event_bus.request_unreadable",
                        partition=record.partition,
                        offset=record.offset,
                        error=exc.message,
                        request_id=request_id,
                    )
                    await self.ack(record.partition, record.offset, epoch)
                    continue
                return KafkaDelivery(request, record.partition, record.offset, epoch, self)

    def _delivered(self, partition: int, offset: int) -> int:
        try:
            return self._tracker.delivered(partition, offset)
        except ValueError:  # the consumer went back (a reset): older deliveries are stale
            log.warning("event_bus.position_moved_back", partition=partition, offset=offset)
            self._tracker.revoke([partition])
            self._committed.pop(partition, None)
            return self._tracker.delivered(partition, offset)

    async def ack(self, partition: int, offset: int, epoch: int) -> None:
        if self._tracker.acked(partition, offset, epoch) is None:
            return
        async with self._commit_lock:  # one commit at a time, never going backwards
            target = self._tracker.committable(partition)
            consumer = self._consumer
            if consumer is None or target is None or target <= self._committed.get(partition, -1):
                return
            try:
                await consumer.commit({TopicPartition(self._bus.requests_topic, partition): target})
            except (KafkaError, IllegalOperation) as exc:
                log.warning(
                    "event_bus.commit_failed",
                    partition=partition,
                    offset=target,
                    error=str(exc) or type(exc).__name__,
                )
                return
            if self._tracker.epoch(partition) == epoch:
                self._committed[partition] = target

    def epoch(self, partition: int) -> int:
        return self._tracker.epoch(partition)

    def revoked(self, partitions: set[int]) -> None:
        if not partitions:  # the first join revokes nothing
            return
        pending = sum(self._tracker.outstanding(p) for p in partitions)
        self._tracker.revoke(partitions)
        for partition in partitions:
            self._committed.pop(partition, None)
        self.partitions = self.partitions - partitions
        log.info("event_bus.partitions_revoked", partitions=sorted(partitions), unacked=pending)

    def assigned(self, partitions: set[int]) -> None:
        self.partitions = frozenset(partitions)
        log.info("event_bus.partitions_assigned", partitions=sorted(partitions))

    async def stop(self) -> None:
        async with self._start_lock, self._commit_lock:
            consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await _stop_quietly(consumer, "requests consumer")
        self.partitions = frozenset()

    async def _started(self) -> Any:
        async with self._start_lock:
            if self._consumer is not None:
                return self._consumer
            bus = self._bus
            if bus.closed:
                raise ConsumerStoppedError
            consumer = AIOKafkaConsumer(
                bootstrap_servers=bus.bootstrap,
                client_id=f"{bus.client_id}-requests",
                group_id=bus.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # requests sent before the group existed
                max_partition_fetch_bytes=bus.max_message_bytes,
                heartbeat_interval_ms=1000,  # notices a rebalance within a second
                session_timeout_ms=10_000,
            )
            consumer.subscribe([bus.requests_topic], listener=_RebalanceListener(self))
            try:
                with _translated("joining the consumer group", bus.where):
                    async with asyncio.timeout(_JOIN_TIMEOUT):
                        await consumer.start()
            except BaseException:
                await _stop_quietly(consumer, "requests consumer")
                raise
            self._consumer = consumer
            return consumer


class _Requests:
    """``requests()``: deliveries from this process's group consumer until the bus closes."""

    def __init__(self, bus: KafkaEventBus) -> None:
        self._bus = bus

    def __aiter__(self) -> _Requests:
        return self

    async def __anext__(self) -> KafkaDelivery:
        bus = self._bus
        if bus.closed:
            raise StopAsyncIteration
        bus._check_started()
        delivery: KafkaDelivery | None = await bus._until_closed(bus._reader.next_delivery())
        if delivery is None:
            raise StopAsyncIteration
        if delivery.request.request_id:
            bind_request_id(delivery.request.request_id)
        else:
            clear_request_id()
        return delivery
