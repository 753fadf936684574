"""The Kafka bus every service uses: broker factory, envelope, batch consumers, retries, dead letters.

Consumption model (the same for every service):

* Batch subscribers with ``AckPolicy.NACK_ON_ERROR``: offsets are committed only after the handler
  returned for the whole batch, i.e. after its effects (published events, database writes) are
  durable. Auto-commit is off.
* Each record is decoded and validated first. Bad bytes or a schema-invalid event go to the service's
  dead-letter topic with the reason, source topic, partition and offset; the rest of the batch goes on.
* A handler failure that looks like broken infrastructure (broker or database unreachable) is retried
  with backoff and then re-raised: the batch is rewound (nack) and redelivered, so nothing is lost.
* Any other handler failure is retried a bounded number of times, then the batch is split record by
  record; a record that still fails is dead-lettered with the error. A poison message therefore never
  blocks its partition and never loops forever.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from itertools import chain
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider as _SdkTracerProvider
from opentelemetry.trace import Span, SpanKind
from pydantic import BaseModel, ValidationError
from pymongo.errors import AutoReconnect, ConnectionFailure, ExecutionTimeout, ServerSelectionTimeoutError

from modelyard_events import DeadLetter, Model

from . import metrics
from .settings import Settings

log = logging.getLogger(__name__)
tracer = trace.get_tracer("modelyard.bus")

E = TypeVar("E", bound=BaseModel)


class TransientError(Exception):
    """Raise from a handler when the failure is temporary and the batch must be redelivered."""


#: Failures of infrastructure: the batch is redelivered rather than dead-lettered.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,
    TimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    AutoReconnect,
    ConnectionFailure,
    ServerSelectionTimeoutError,
    ExecutionTimeout,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    return isinstance(exc, KafkaError) and getattr(exc, "retriable", False)


# --------------------------------------------------------------------------------------------------
# Envelope


def encode(event: Model, source: str) -> tuple[bytes, dict[str, str]]:
    """Serialise an event: JSON body plus binary-mode CloudEvents headers and W3C trace context."""
    body = event.model_dump_json().encode()
    headers = {"content-type": "application/json", "ce_specversion": "1.0", "ce_source": f"modelyard/{source}"}
    event_id = getattr(event, "event_id", None)
    if event_id:
        headers["ce_id"] = event_id
    event_type = getattr(event, "type", None)
    if event_type:
        headers["ce_type"] = event_type
    when = getattr(event, "time", None)
    if when is not None:
        headers["ce_time"] = when.isoformat()
    tenant_id = getattr(event, "tenant_id", None)
    if tenant_id:
        headers["ce_tenantid"] = tenant_id
    propagate.inject(headers)
    return body, headers


def _headers(record: ConsumerRecord) -> dict[str, str]:
    return {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v)) for k, v in (record.headers or ())}


@dataclass(slots=True)
class Delivery(Generic[E]):
    """One decoded record. ``event`` is None only for a tombstone on a compacted topic."""

    event: E | None
    record: ConsumerRecord
    headers: dict[str, str]
    span: Span | None = field(default=None, repr=False)

    @property
    def key(self) -> str | None:
        k = self.record.key
        return k.decode(errors="replace") if isinstance(k, bytes) else k

    def activate(self):
        """Make this record's consumer span current: logs carry its trace id, publishes its context."""
        if self.span is None:
            return contextlib.nullcontext()
        return trace.use_span(self.span, end_on_exit=False)

    def context(self) -> otel_context.Context:
        """Trace context to publish follow-up events under: this record's consumer span or, with
        tracing off, the trace context the record arrived with (so it is forwarded unchanged)."""
        if self.span is None:
            return propagate.extract(self.headers)
        return trace.set_span_in_context(self.span)


@dataclass(slots=True)
class Outgoing:
    topic: str
    event: Model
    key: str | None = None
    cause: Delivery | None = None


Handler = Callable[[list[Delivery[E]]], Awaitable[None]]


# --------------------------------------------------------------------------------------------------
# Bus


class Bus:
    """A service's connection to Kafka: one FastStream broker, its publishers and batch subscribers."""

    def __init__(self, settings: Settings, service: str, *, client_id: str | None = None) -> None:
        self.settings = settings
        self.service = service
        self.topics = settings.topics
        k = settings.kafka
        security: dict[str, Any] = {}
        if k.sasl_mechanism:
            from faststream.security import SASLPlaintext, SASLScram256, SASLScram512

            cls = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}[k.sasl_mechanism]
            security["security"] = cls(username=k.sasl_username or "", password=k.sasl_password or "", use_ssl=k.security_protocol.endswith("SSL"))
        self.broker = KafkaBroker(
            k.bootstrap_servers,
            client_id=client_id or f"modelyard-{service}",
            enable_idempotence=True,
            acks="all",
            linger_ms=k.linger_ms,
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            graceful_timeout=settings.shutdown_timeout_s,
            logger=logging.getLogger(f"modelyard.{service}.kafka"),
            log_level=logging.DEBUG,  # per-batch "Received"/"Processed" lines are noise at INFO
            **security,
        )

    # -- publishing ------------------------------------------------------------------------------

    async def send(self, out: Outgoing) -> asyncio.Future:
        """Start sending one event; returns the broker acknowledgement future."""
        token = otel_context.attach(out.cause.context()) if out.cause is not None else None
        try:
            body, headers = encode(out.event, self.service)
        finally:
            if token is not None:
                otel_context.detach(token)
        key = out.key if out.key is not None else getattr(out.event, "tenant_id", None)
        return await self.broker.publish(
            body,
            topic=out.topic,
            key=key.encode() if key else None,
            headers=headers,
            no_confirm=True,
        )

    async def publish(self, outgoing: Iterable[Outgoing]) -> None:
        """Send events and wait until the broker has acknowledged every one of them."""
        futures = [await self.send(o) for o in outgoing]
        if futures:
            await asyncio.gather(*futures)

    async def publish_one(self, topic: str, event: Model, key: str | None = None) -> None:
        await self.publish([Outgoing(topic, event, key)])

    async def tombstone(self, topic: str, key: str) -> None:
        """Publish a null value under ``key`` (deletion on a compacted topic)."""
        fut = await self.broker.publish(None, topic=topic, key=key.encode(), no_confirm=True)
        await fut

    # -- consuming -------------------------------------------------------------------------------

    def consume(
        self,
        topic: str,
        model: type[E],
        handler: Handler[E],
        *,
        group_id: str,
        tombstones: bool = False,
        max_records: int | None = None,
        batch_timeout_ms: int | None = None,
        title: str | None = None,
        description: str | None = None,
        group_instance_id: str | None = None,
        linger_ms: int = 0,
        fetch_wait_ms: int | None = None,
    ) -> None:
        """Register a batch handler for ``topic``. See the module docstring for the guarantees.

        A batch is what one poll returns (up to ``max_records``); with ``linger_ms`` the consumer keeps
        polling for that long after the first record, so that a handler whose cost is per batch (a
        database write) runs less often at low rates, at the price of that much latency.

        ``fetch_wait_ms`` lets the broker hold each fetch that long while less than a megabyte is
        waiting: for a consumer that lingers anyway, one round trip per ``fetch_wait_ms`` instead of one
        per record at low rates (each costs the broker and this process a request, a response and
        their system calls).

        ``group_instance_id`` makes the consumer a static group member (KIP-345): a replica that
        restarts under the same id gets its partitions back at once instead of after the session timeout.
        """
        k = self.settings.kafka
        consumer = _BatchConsumer(self, topic, model, handler, tombstones=tombstones)

        async def on_batch(msg: KafkaMessage) -> None:
            await consumer.handle_batch(msg.raw_message)

        on_batch.__name__ = f"{self.service}_{topic.replace('.', '_')}"
        on_batch.__doc__ = description or (model.__doc__ or "").strip().splitlines()[0]
        subscriber = self.broker.subscriber(
            topic,
            group_id=f"{self.topics.prefix}{group_id}",
            decoder=_raw_records,
            batch=True,
            max_records=max_records or k.max_batch_records,
            batch_timeout_ms=batch_timeout_ms or k.batch_timeout_ms,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            group_instance_id=group_instance_id,
            **({"fetch_max_wait_ms": fetch_wait_ms, "fetch_min_bytes": 1 << 20} if fetch_wait_ms else {}),
            title=title or f"{topic}:{self.service}",
            description=on_batch.__doc__,
        )
        subscriber(on_batch)
        _poll(subscriber, linger_ms)

    async def dead_letter(self, record: ConsumerRecord, error_type: str, error: str) -> None:
        value = record.value
        letter = DeadLetter(
            service=self.service,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key.decode(errors="replace") if isinstance(record.key, bytes) else record.key,
            error_type=error_type,
            error=error[:4000],
            value_base64=base64.b64encode(value).decode() if value is not None else None,
            headers=_headers(record),
        )
        metrics.DEAD_LETTERS.labels(self.service, record.topic, error_type).inc()
        log.warning(
            "dead-lettered %s[%d]@%d (%s): %s", record.topic, record.partition, record.offset, error_type, error[:300],
            extra={"topic": record.topic, "error_type": error_type},
        )
        await self.publish_one(self.topics.deadletter(self.service), letter, key=letter.key)

    # -- topics ----------------------------------------------------------------------------------

    async def ensure_topics(self, names: Sequence[str] | None = None) -> None:
        await ensure_topics(self.settings, names or self.topics.all_topics())


async def _raw_records(message: KafkaMessage) -> None:
    """Decoder that decodes nothing: the handler validates each record itself (and dead-letters bad
    ones), so FastStream's own JSON decoding of every body would be wasted work."""
    return None


def _poll(subscriber: Any, linger_ms: int) -> None:
    """Replace the batch subscriber's poll: no sleep after an empty poll, and an optional linger.

    FastStream's batch subscriber (0.7) sleeps ``batch_timeout_ms`` again after a poll that found
    nothing, and a record arriving during that sleep waits it out: up to twice the timeout added to
    every hop of a lightly loaded pipeline. ``getmany`` already waits for records and returns as soon
    as any arrive, so the poll is all the waiting a consumer needs.
    """
    linger_s = linger_ms / 1000

    async def get_msg(consumer: Any) -> tuple[ConsumerRecord, ...]:
        limit = subscriber.max_records
        batches = await consumer.getmany(timeout_ms=subscriber.batch_timeout_ms, max_records=limit)
        records = list(chain.from_iterable(batches.values()))
        if linger_s and records:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + linger_s
            while (limit is None or len(records) < limit) and (left := deadline - loop.time()) > 0:
                more = await consumer.getmany(timeout_ms=max(1, round(left * 1000)),
                                              max_records=None if limit is None else limit - len(records))
                records.extend(chain.from_iterable(more.values()))
        return tuple(records)

    subscriber.get_msg = get_msg


def tracing_enabled() -> bool:
    """True when an SDK tracer provider is installed (spans are recorded and exported)."""
    return isinstance(trace.get_tracer_provider(), _SdkTracerProvider)


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a record cannot be processed: it belongs on the dead-letter topic."""

    error_type: str
    error: str


def decode_record(record: ConsumerRecord, model: type[E], *, service: str,
                  tombstones: bool = False) -> Delivery[E] | Rejected:
    """Validate one record into its event (with its consumer span when tracing is on), or say why not."""
    headers = _headers(record)
    if record.value is None:
        if tombstones:
            return Delivery(None, record, headers)
        return Rejected("decode", "null value on a topic that does not carry tombstones")
    try:
        event = model.model_validate_json(record.value)
    except ValidationError as exc:
        kind = "decode" if any(e.get("type") == "json_invalid" for e in exc.errors()) else "schema"
        return Rejected(kind, f"not a valid {model.__name__}: {_describe_validation(exc)}")
    if not tracing_enabled():
        # No spans to record: publishes forward the caller's trace context unchanged (Delivery.context).
        return Delivery(event, record, headers)
    span = tracer.start_span(
        f"{record.topic} process",
        context=propagate.extract(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.kafka.partition": record.partition,
            "messaging.kafka.offset": record.offset,
            "messaging.consumer.group.name": service,
            "modelyard.tenant_id": getattr(event, "tenant_id", "") or "",
            "modelyard.query_id": getattr(event, "query_id", "") or "",
        },
    )
    return Delivery(event, record, headers, span)


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(body)"
        parts.append(f"{loc}: {err.get('msg')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class _BatchConsumer(Generic[E]):
    def __init__(self, bus: Bus, topic: str, model: type[E], handler: Handler[E], *, tombstones: bool) -> None:
        self.bus = bus
        self.topic = topic
        self.model = model
        self.handler = handler
        self.tombstones = tombstones
        self.attempts = bus.settings.kafka.handler_attempts
        self._labels = (bus.service, topic)

    async def handle_batch(self, records: tuple[ConsumerRecord, ...] | ConsumerRecord) -> None:
        if not isinstance(records, tuple):
            records = (records,)
        deliveries: list[Delivery[E]] = []
        for record in records:
            delivery = await self._decode(record)
            if delivery is not None:
                deliveries.append(delivery)
        if not deliveries:
            return
        try:
            with metrics.HANDLER_SECONDS.labels(*self._labels).time():
                await self._run(deliveries)
            metrics.MESSAGES.labels(*self._labels, "ok").inc(len(deliveries))
        finally:
            for d in deliveries:
                if d.span is not None:
                    d.span.end()

    async def _decode(self, record: ConsumerRecord) -> Delivery[E] | None:
        decoded = decode_record(record, self.model, service=self.bus.service, tombstones=self.tombstones)
        if isinstance(decoded, Rejected):
            await self.bus.dead_letter(record, decoded.error_type, decoded.error)
            return None
        return decoded

    async def _run(self, deliveries: list[Delivery[E]]) -> None:
        """Run the handler on the batch; on a non-transient failure isolate the records that fail."""
        try:
            await self._with_retries(deliveries)
            return
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_transient(exc):
                raise
            if len(deliveries) == 1:
                await self._give_up(deliveries[0], exc)
                return
            log.warning("batch of %d on %s failed (%s); retrying record by record", len(deliveries), self.topic, exc)
        for d in deliveries:
            try:
                await self._with_retries([d])
            except Exception as exc:  # noqa: BLE001
                if is_transient(exc):
                    raise
                await self._give_up(d, exc)

    async def _with_retries(self, deliveries: list[Delivery[E]]) -> None:
        delay = 0.05
        for attempt in range(1, self.attempts + 1):
            try:
                await self.handler(deliveries)
                return
            except Exception as exc:
                transient = is_transient(exc)
                if attempt == self.attempts and not transient:
                    raise
                if transient and attempt == self.attempts:
                    log.warning("transient failure on %s, batch will be redelivered: %r", self.topic, exc)
                    await asyncio.sleep(delay)
                    raise
                log.info("handler on %s failed (attempt %d/%d): %r", self.topic, attempt, self.attempts, exc)
                await asyncio.sleep(delay * (1 + random.random()))
                delay = min(delay * 4, 2.0)

    async def _give_up(self, delivery: Delivery[E], exc: BaseException) -> None:
        metrics.MESSAGES.labels(*self._labels, "error").inc()
        if delivery.span is not None:
            delivery.span.record_exception(exc)
        log.exception("giving up on %s[%d]@%d", delivery.record.topic, delivery.record.partition, delivery.record.offset, exc_info=exc)
        await self.bus.dead_letter(delivery.record, "processing", f"{type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------------------------------
# Topic administration


async def ensure_topics(settings: Settings, names: Sequence[str]) -> None:
    """Create missing topics (compacted where the contract says so); existing ones are left alone."""
    k = settings.kafka
    compacted = settings.topics.compacted()
    admin = AIOKafkaAdminClient(bootstrap_servers=k.bootstrap_servers, client_id="modelyard-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if not missing:
            return
        new = [
            NewTopic(
                name=n,
                num_partitions=k.partitions,
                replication_factor=k.replication_factor,
                topic_configs={"cleanup.policy": "compact"} if n in compacted else {},
            )
            for n in missing
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass  # another service created them first
        log.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()
