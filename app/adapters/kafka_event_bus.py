"""EventBus on Kafka (``KG_BUS_URL=kafka://host:9092,host2:9092?partitions=8``).

Requests: one topic keyed by document id, so one document's requests reach one partition
in order. Each process that iterates ``requests()`` runs one consumer in the group
``group_id``, joined on the first ``__anext__`` (API processes that never consume do not
join); several ``requests()`` iterators of one process share it, each request going to
one of them. Offsets are committed by ``Delivery.ack``, only up to the longest prefix of
acknowledged deliveries of a partition (``ContiguousCommits``): a request acknowledged
early never commits past one still in progress. After a rebalance, or when a process
stops, what was delivered and not acknowledged is delivered again, maybe elsewhere:
at least once. ``ack`` returns once the commit is done (a few ms); a failed commit is
logged, never raised: it only means a redelivery, and the workers' writes are
idempotent. A process that does not ask for the next request for ``max.poll.interval``
(aiokafka's default, 5 minutes) leaves the group and its unacknowledged requests go
elsewhere. Order is kept per partition; only a one-partition topic keeps the global
order of the in-process bus.

Events: every process sees every event. One consumer per bus, outside any group,
assigned every partition of the events topic and placed at its end by ``start()``,
feeds the local subscribers (like the in-process bus, one bounded queue each; a slow
subscriber loses the newest events, for itself only, counted in
``kg_event_bus_dropped_events_total``). ``events()`` registers a subscriber at once; it
receives what was published after the call, as far as this process can know: events it
published itself, or already fetched, before the call are skipped by offset.

A request id travels in the ``request_id`` header; ``requests()`` binds it to the log
context of the consumer, the events reader around each event. Driver errors: broker
unreachable or timed out is ``UnavailableError`` (retryable); a refused topic setting is
``ConfigurationError``; a message over ``max_message_bytes`` is ``BadInputError``; any
other Kafka error is ``BackendError``, retryable when Kafka says so.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections import deque
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import structlog

# aiokafka ships no type information (no py.typed); its objects are Any here.
from aiokafka import (  # type: ignore[import-untyped]
    AIOKafkaConsumer,
    AIOKafkaProducer,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from aiokafka.errors import (  # type: ignore[import-untyped]
    ConsumerStoppedError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

from app.adapters.kafka_codec import (
    decode_event,
    encode_event,
    encode_request,
    request_id_headers,
    request_id_of,
)
from app.adapters.kafka_requests import _RequestReader, _Requests
from app.adapters.kafka_support import (
    _REFUSED_SETTINGS,
    _stop_quietly,
    _translated,
)
from app.domain.errors import (
    BackendError,
    ConfigurationError,
    UnavailableError,
)
from app.domain.models import IngestionEvent, IngestionRequest
from app.observability.logging import current_request_id
from app.observability.metrics import EVENTS_DROPPED

T = TypeVar("T")
log = structlog.get_logger(__name__)

DEFAULT_PORT = 9092
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_EVENTS_RETENTION_MS = 3_600_000  # events matter live only; readers start at the end


def kafka_bus_from_url(url: str, **overrides: Any) -> KafkaEventBus:
    """A bus for ``kafka://host[:port][,host[:port]...][?option=value&...]``.

    Options: ``partitions``, ``replication``, ``requests_topic``, ``events_topic``,
    ``group_id``, ``client_id``; keyword ``overrides`` win over the URL."""
    parts = urlsplit(url)
    if parts.scheme != "kafka":
        raise ConfigurationError(f"a Kafka bus URL starts with kafka://, got {url!r}")
    if "@" in parts.netloc:
        raise ConfigurationError("credentials in a kafka:// URL are not supported")
    if parts.path not in ("", "/") or parts.fragment:
        raise ConfigurationError(f"a kafka:// URL has no path or fragment, got {url!r}")
    bootstrap = ",".join(_broker(item) for item in parts.netloc.split(","))
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key in options:
            raise ConfigurationError(f"kafka:// URL option {key!r} is given twice")
        if key in ("partitions", "replication"):
            try:
                options[key] = int(value)
            except ValueError:
                raise ConfigurationError(
                    f"kafka:// URL option {key}={value!r} is not a number"
                ) from None
        elif key in ("requests_topic", "events_topic", "group_id", "client_id"):
            options[key] = value
        else:
            raise ConfigurationError(
                f"unknown kafka:// URL option {key!r}; known: partitions, replication, "
                "requests_topic, events_topic, group_id, client_id"
            )
    return KafkaEventBus(bootstrap, **{**options, **overrides})


def _broker(item: str) -> str:
    host, port = item, str(DEFAULT_PORT)
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ConfigurationError(f"bad Kafka broker address {item!r}")
            port = rest[1:]
        host = f"[{host}]"
    elif ":" in item:
        host, _, port = item.rpartition(":")
    if not host or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(f"bad Kafka broker address {item!r} (want host:port)")
    return f"{host}:{port}"


class KafkaEventSubscription:
    """One ``events()`` subscriber: a bounded queue fed by the bus's events reader."""

    def __init__(self, bus: KafkaEventBus, maxsize: int, floor: dict[int, int]) -> None:
        self._bus = bus
        self._items: deque[IngestionEvent] = deque()
        self._maxsize = maxsize
        self._floor = floor  # per partition, the first offset published after subscribing
        self._wake = asyncio.Event()
        self.closed = bus.closed
        self.dropped = 0
        if not self.closed:
            bus._subscribers.add(self)

    def __aiter__(self) -> KafkaEventSubscription:
        return self

    async def __anext__(self) -> IngestionEvent:
        while True:
            if self._items:
                return self._items.popleft()
            if self.closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()

    async def aclose(self) -> None:
        """Stop receiving events (also what ``contextlib.aclosing`` calls)."""
        self._end()

    def _deliver(self, partition: int, offset: int, event: IngestionEvent) -> None:
        if self.closed or offset < self._floor.get(partition, 0):
            return
        if len(self._items) < self._maxsize:
            self._items.append(event)
            self._wake.set()
            return
        self.dropped += 1
        EVENTS_DROPPED.inc()
        if self.dropped == 1 or self.dropped % 1000 == 0:
            log.warning(
                "event_bus.subscriber_lagging",
                dropped=self.dropped,
                queued=len(self._items),
                job_id=event.job_id,
            )

    def _end(self) -> None:
        self.closed = True
        self._items.clear()
        self._wake.set()
        self._bus._subscribers.discard(self)


class KafkaEventBus:
    """The EventBus on Kafka; see the module docstring for its guarantees."""

    def __init__(
        self,
        bootstrap: str,
        requests_topic: str = "kg.ingestion.requests",
        events_topic: str = "kg.ingestion.events",
        group_id: str = "kg-workers",
        partitions: int = 8,
        replication: int = 1,
        client_id: str = "kg",
        *,
        max_queue: int = 10_000,
        timeout: float = 10.0,
        max_message_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        if not bootstrap.strip():
            raise ConfigurationError("the Kafka bus needs at least one bootstrap broker")
        for name, topic in (("requests_topic", requests_topic), ("events_topic", events_topic)):
            if not _TOPIC_NAME.match(topic) or topic in (".", ".."):
                raise ConfigurationError(f"{name} {topic!r} is not a valid Kafka topic name")
        if requests_topic == events_topic:
            raise ConfigurationError("requests_topic and events_topic must differ")
        for name, number in (
            ("partitions", partitions),
            ("replication", replication),
            ("max_queue", max_queue),
        ):
            if number < 1:
                raise ConfigurationError(f"{name} must be at least 1, got {number}")
        if not group_id or not client_id:
            raise ConfigurationError("group_id and client_id must not be empty")
        if timeout <= 0 or max_message_bytes < 1024:
            raise ConfigurationError("timeout must be positive and max_message_bytes >= 1024")
        self.bootstrap = bootstrap
        self.where = bootstrap
        self.requests_topic = requests_topic
        self.events_topic = events_topic
        self.group_id = group_id
        self.partitions = partitions
        self.replication = replication
        self.client_id = client_id
        self.max_message_bytes = max_message_bytes
        self._max_queue = max_queue
        self._timeout = timeout
        self._producer: Any = None
        self._events_consumer: Any = None
        self._pump: asyncio.Task[None] | None = None
        self._reader = _RequestReader(self)
        # Weak: a subscriber dropped without aclose() stops receiving when collected.
        self._subscribers: weakref.WeakSet[KafkaEventSubscription] = weakref.WeakSet()
        self._known_end: dict[int, int] = {}  # events: next offset known to exist
        self._closing = asyncio.Event()
        self._lifecycle = asyncio.Lock()
        self.closed = False

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Create the topics if missing, start the producer and the events reader.
        A second call does nothing; a broker that does not answer within ``timeout``
        seconds is ``UnavailableError``."""
        async with self._lifecycle:
            if self.closed:
                raise UnavailableError("the event bus is closed")
            if self._producer is not None:
                return
            started: list[Any] = []
            try:
                with _translated("starting", self.where):
                    async with asyncio.timeout(self._timeout):
                        await self._create_topics()
                        producer = self._new_producer()
                        started.append(producer)
                        await producer.start()
                        consumer = self._new_events_consumer()
                        started.append(consumer)
                        await consumer.start()
                        for tp in consumer.assignment():  # fixes the start: the end, now
                            self._known_end[tp.partition] = await consumer.position(tp)
            except BaseException:
                for client in reversed(started):
                    await _stop_quietly(client, "client after a failed start")
                raise
            self._producer, self._events_consumer = started
            self._pump = asyncio.create_task(self._read_events(consumer), name="kafka-events")
            log.info(
                "event_bus.started",
                bootstrap=self.where,
                requests_topic=self.requests_topic,
                events_topic=self.events_topic,
                group_id=self.group_id,
            )

    def _new_producer(self) -> Any:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-producer",
            acks="all",
            enable_idempotence=True,
            max_request_size=self.max_message_bytes,
            request_timeout_ms=int(self._timeout * 1000),
        )

    def _new_events_consumer(self) -> Any:
        """Outside any group: every partition, from the end, in every process."""
        return AIOKafkaConsumer(
            self.events_topic,
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-events",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            max_partition_fetch_bytes=self.max_message_bytes,
        )

    async def close(self) -> None:
        """Ends every iterator, then stops the consumers and the producer. Idempotent."""
        self.closed = True
        self._closing.set()
        for subscriber in list(self._subscribers):
            subscriber._end()
        async with self._lifecycle:
            pump, self._pump = self._pump, None
            if pump is not None:
                pump.cancel()
                await asyncio.wait({pump})
            await self._reader.stop()
            consumer, self._events_consumer = self._events_consumer, None
            producer, self._producer = self._producer, None
            if consumer is not None:
                await _stop_quietly(consumer, "events consumer")
            if producer is not None:
                await self._stop_producer(producer)

    async def _stop_producer(self, producer: Any) -> None:
        """Flush, then stop. With the broker gone, aiokafka's idempotent producer would
        retry unsent messages for ever and ``stop()`` wait for them: after ``timeout``
        they are given up (logged) and its sender task is cancelled so it can stop."""
        try:
            async with asyncio.timeout(self._timeout):
                await producer.flush()
        except TimeoutError:
            log.warning("event_bus.unsent_messages_abandoned", bootstrap=self.where)
            sender_task = getattr(getattr(producer, "_sender", None), "sender_task", None)
            if sender_task is not None:
                sender_task.cancel()
        await _stop_quietly(producer, "producer", self._timeout)

    # --- requests ----------------------------------------------------------------------

    async def publish_request(self, request: IngestionRequest) -> None:
        """Returns once Kafka has the request (all in-sync replicas)."""
        self._check_started()
        headers = request_id_headers(request.request_id or current_request_id())
        body = encode_request(request)
        await self._send(self.requests_topic, request.document_id, body, headers, "a request")

    def requests(self) -> _Requests:
        return _Requests(self)

    @property
    def assigned_partitions(self) -> frozenset[int]:
        """The requests partitions this process consumes now (empty until it joins)."""
        return self._reader.partitions

    # --- events ------------------------------------------------------------------------

    async def publish_event(self, event: IngestionEvent) -> None:
        self._check_started()
        headers = request_id_headers(current_request_id())
        sent = await self._send(
            self.events_topic, event.job_id, encode_event(event), headers, "an event"
        )
        self._note_end(sent.partition, sent.offset + 1)

    async def _send(self, topic: str, key: str, body: bytes, headers: Any, what: str) -> Any:
        """Send and wait for the broker's acknowledgement, at most ``timeout`` seconds.
        The idempotent producer retries without end, so a message given up on here may
        still arrive once the broker is back (consumers must tolerate that anyway)."""
        producer = self._check_started()
        with _translated(f"publishing {what}", self.where):
            async with asyncio.timeout(self._timeout):
                return await producer.send_and_wait(topic, body, key=key.encode(), headers=headers)

    def events(self) -> KafkaEventSubscription:
        """A subscription, registered now: events published after this call reach it."""
        if self._producer is None and not self.closed:
            raise UnavailableError("the Kafka event bus is not started")
        floor = dict(self._known_end)
        consumer = self._events_consumer
        if consumer is not None:  # what the reader fetched but has not handed out yet
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                if highwater is not None and highwater > floor.get(tp.partition, 0):
                    floor[tp.partition] = highwater
        return KafkaEventSubscription(self, self._max_queue, floor)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def _read_events(self, consumer: Any) -> None:
        """The events reader: fans each event out to the local subscribers."""
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000, max_records=500)
            except ConsumerStoppedError:
                return
            except KafkaError as exc:  # aiokafka reconnects by itself; keep reading
                log.warning("event_bus.events_read_failed", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            except Exception:
                log.exception("event_bus.events_read_failed")
                await asyncio.sleep(1.0)
                continue
            for records in batches.values():
                for record in records:
                    self._dispatch(record)

    def _dispatch(self, record: Any) -> None:
        request_id = request_id_of(record.headers)
        bound = {"request_id": request_id} if request_id else {}
        with structlog.contextvars.bound_contextvars(**bound):
            try:
                event = decode_event(record.value)
            except BackendError as exc:
                log.error(
                    "event_bus.event_unreadable",
                    partition=record.partition,
                    offset=record.offset,
                    error=exc.message,
                )
            else:
                for subscriber in list(self._subscribers):
                    subscriber._deliver(record.partition, record.offset, event)
        self._note_end(record.partition, record.offset + 1)

    def _note_end(self, partition: int, end: int) -> None:
        if end > self._known_end.get(partition, 0):
            self._known_end[partition] = end

    # --- helpers -----------------------------------------------------------------------

    def _check_started(self) -> Any:
        if self.closed:
            raise UnavailableError("the event bus is closed")
        if self._producer is None:
            raise UnavailableError("the Kafka event bus is not started")
        return self._producer

    async def _until_closed(self, work: Awaitable[T]) -> T | None:
        """``work``'s result, or None once the bus closes (``work`` is then cancelled)."""
        task = asyncio.ensure_future(work)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not task.done():
                task.cancel()
                await asyncio.wait({task})
        if task.cancelled():
            return None
        error = task.exception()
        if isinstance(error, ConsumerStoppedError) or (error is not None and self.closed):
            return None
        return task.result()

    async def _create_topics(self) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-admin",
            request_timeout_ms=int(self._timeout * 1000),
        )
        try:
            await admin.start()
            size = str(self.max_message_bytes)
            topics = [
                NewTopic(
                    self.requests_topic,
                    self.partitions,
                    self.replication,
                    None,
                    {"max.message.bytes": size},
                ),
                NewTopic(
                    self.events_topic,
                    self.partitions,
                    self.replication,
                    None,
                    {"max.message.bytes": size, "retention.ms": str(_EVENTS_RETENTION_MS)},
                ),
            ]
            response = await admin.create_topics(topics)
            existing = []
            for row in response.to_object()["topic_errors"]:
                error = for_code(row["error_code"])
                if error is TopicAlreadyExistsError:
                    existing.append(row["topic"])
                elif row["error_code"] in _REFUSED_SETTINGS:
                    raise ConfigurationError(
                        f"Kafka at {self.where} refused topic {row['topic']!r} with "
                        f"{self.partitions} partitions, replication {self.replication}: "
                        f"{row['error_message'] or error.__name__}"
                    )
                elif row["error_code"] != 0:
                    raise error(row["error_message"] or error.__name__)
            if existing:
                await self._check_existing(admin, existing)
        finally:
            await _stop_quietly(admin, "admin client")

    async def _check_existing(self, admin: Any, topics: list[str]) -> None:
        """An existing topic keeps its partition count; fewer than configured is logged."""
        for row in await admin.describe_topics(topics):
            count = len(row.get("partitions") or ())
            if count < self.partitions:
                log.warning(
                    "event_bus.topic_has_fewer_partitions",
                    topic=row.get("topic"),
                    partitions=count,
                    configured=self.partitions,
                )
