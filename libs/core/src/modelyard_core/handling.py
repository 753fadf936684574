"""What becomes of a batch of records: decode, run the handler, retry, isolate, dead-letter.

Plain policy over two ports: the service's ``Handler`` and a ``DeadLetterSink`` (the bus publishes
to ``deadletter.<service>``; a unit test collects in a list). No broker is involved, so each rule
below is unit-tested with fakes; the Kafka adapter (``bus.Bus``) polls the records and commits their
offsets only after ``handle_batch`` returned.

1. Decode every record. A record that is not a valid event is dead-lettered with the reason
   (``decode`` or ``schema``); the rest of the batch goes on.
2. Run the handler on the decoded batch; a failure is retried ``attempts`` times with backoff.
3. A failure that looks like broken infrastructure (``is_transient``: broker or database
   unreachable) is re-raised after its last attempt: the batch is rewound and redelivered, never
   dead-lettered, so nothing is lost while a dependency is down.
4. Any other failure splits the batch record by record, each retried the same way; a record that
   still fails is dead-lettered with the error (``processing``). A poison message therefore never
   blocks its partition and never loops forever.

The retry loop is hand-written rather than tenacity's: after the last attempt of a transient failure
it pauses once more before re-raising (an immediate rewind would hammer a broker that is down), and
expressing that and the jittered backoff with tenacity takes as many lines.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from pymongo.errors import AutoReconnect, ConnectionFailure, ExecutionTimeout, ServerSelectionTimeoutError

from . import metrics
from .envelope import Delivery, E, Rejected, decode_record

log = logging.getLogger(__name__)


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


Handler = Callable[[list[Delivery[E]]], Awaitable[None]]


class DeadLetterSink(Protocol):
    """Where a record that cannot be processed goes, with the reason (the port to the bus)."""

    async def dead_letter(self, record: ConsumerRecord, error_type: str, error: str) -> None: ...


#: First pause between two attempts; each next one is four times longer, at most ``MAX_DELAY_S``.
FIRST_DELAY_S = 0.05
MAX_DELAY_S = 2.0


class BatchHandling(Generic[E]):
    """The steps above for the batches of one topic. ``sleep`` and ``jitter`` are injectable for tests."""

    def __init__(self, dead_letters: DeadLetterSink, service: str, topic: str, model: type[E], handler: Handler[E],
                 *, attempts: int, tombstones: bool = False,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.dead_letters = dead_letters
        self.service = service
        self.topic = topic
        self.model = model
        self.handler = handler
        self.attempts = attempts
        self.tombstones = tombstones
        self.sleep = sleep
        self.jitter = jitter
        self._labels = (service, topic)

    async def handle_batch(self, records: tuple[ConsumerRecord, ...] | ConsumerRecord) -> None:
        if not isinstance(records, tuple):
            records = (records,)
        # 1. Decode; dead-letter what is not an event.
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
        decoded = decode_record(record, self.model, service=self.service, tombstones=self.tombstones)
        if isinstance(decoded, Rejected):
            await self.dead_letters.dead_letter(record, decoded.error_type, decoded.error)
            return None
        return decoded

    async def _run(self, deliveries: list[Delivery[E]]) -> None:
        """2.-4. The batch with retries; on a failure that is not transient, record by record."""
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
        delay = FIRST_DELAY_S
        for attempt in range(1, self.attempts + 1):
            try:
                await self.handler(deliveries)
                return
            except Exception as exc:
                if attempt == self.attempts:
                    if is_transient(exc):
                        log.warning("transient failure on %s, batch will be redelivered: %r", self.topic, exc)
                        await self.sleep(delay)
                    raise
                log.info("handler on %s failed (attempt %d/%d): %r", self.topic, attempt, self.attempts, exc)
                await self.sleep(delay * (1 + self.jitter()))
                delay = min(delay * 4, MAX_DELAY_S)

    async def _give_up(self, delivery: Delivery[E], exc: BaseException) -> None:
        metrics.MESSAGES.labels(*self._labels, "error").inc()
        if delivery.span is not None:
            delivery.span.record_exception(exc)
        log.exception("giving up on %s[%d]@%d", delivery.record.topic, delivery.record.partition, delivery.record.offset, exc_info=exc)
        await self.dead_letters.dead_letter(delivery.record, "processing", f"{type(exc).__name__}: {exc}")
