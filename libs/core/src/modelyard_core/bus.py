"""The Kafka bus every service uses: the FastStream/aiokafka adapter of the consumption model.

Consumption model (the same for every service; the policy itself is ``handling.BatchHandling``):

* Batch subscribers: offsets are committed only after the handler returned for the whole batch, i.e.
  after its effects (published events, database writes) are durable. Auto-commit is off. The commit
  itself runs in the background (``commit_in_background``, the default): the next poll does not wait
  for the group coordinator's answer, one commit is in flight at a time and carries the newest handled
  offsets. A crash before it lands redelivers what was handled, as a crash before a synchronous commit
  did; on shutdown the last commits are awaited. A failed handler rewinds the batch (nack).
* Each record is decoded and validated first. Bad bytes or a schema-invalid event go to the service's
  dead-letter topic with the reason, source topic, partition and offset; the rest of the batch goes on.
* A handler failure that looks like broken infrastructure (broker or database unreachable) is retried
  with backoff and then re-raised: the batch is rewound (nack) and redelivered, so nothing is lost.
* Any other handler failure is retried a bounded number of times, then the batch is split record by
  record; a record that still fails is dead-lettered with the error. A poison message therefore never
  blocks its partition and never loops forever.

Beside it: ``envelope`` (encoding and decoding records), ``handling`` (the policy above),
``admin`` (topic creation), ``kafka_clients`` (every client's connection). Their public names are
re-exported here, where services have always imported them from.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from opentelemetry import context as otel_context

from modelyard_events import DeadLetter, Model
from modelyard_events.topology import SERVICES

from . import metrics
from .acls import service_topics
from .admin import ensure_topics
from .envelope import Delivery, E, Outgoing, Rejected, decode_record, encode, record_headers, tracing_enabled
from .handling import TRANSIENT_ERRORS, BatchHandling, DeadLetterSink, Handler, TransientError, is_transient
from .kafka_clients import broker_params
from .settings import Settings

__all__ = [
    "TRANSIENT_ERRORS", "Bus", "DeadLetterSink", "Delivery", "Handler", "Outgoing", "Rejected", "TransientError",
    "decode_record", "encode", "ensure_topics", "is_transient", "tracing_enabled",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Bus


class Bus:
    """A service's connection to Kafka: one FastStream broker, its publishers and batch subscribers."""

    def __init__(self, settings: Settings, service: str, *, client_id: str | None = None) -> None:
        self.settings = settings
        self.service = service
        self.topics = settings.topics
        k = settings.kafka
        self.broker = KafkaBroker(
            **broker_params(k),
            client_id=client_id or f"modelyard-{service}",
            enable_idempotence=True,
            acks="all",
            linger_ms=k.linger_ms,
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            graceful_timeout=settings.shutdown_timeout_s,
            logger=logging.getLogger(f"modelyard.{service}.kafka"),
            log_level=logging.DEBUG,  # per-batch "Received"/"Processed" lines are noise at INFO
        )
        self._committers: list[BackgroundCommits] = []
        self._commit_now = False  # stopping: every batch waits for its commit

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
        if self.settings.kafka.direct_send:
            # The broker's own aiokafka producer: FastStream's publish adds a command object, a correlation
            # id, a codec pass and a header merge per event, as much CPU as the send itself.
            producer = self.broker.config.producer._producer.producer  # noqa: SLF001 - see above
            return await producer.send(out.topic, body, key=key.encode() if key else None, partition=out.partition,
                                       headers=[(k, v.encode()) for k, v in headers.items()])
        return await self.broker.publish(
            body,
            topic=out.topic,
            key=key.encode() if key else None,
            partition=out.partition,
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
        handling = BatchHandling(self, self.service, topic, model, handler, attempts=k.handler_attempts,
                                 tombstones=tombstones)
        commits = BackgroundCommits(topic) if k.commit_in_background else None

        async def on_batch(msg: KafkaMessage) -> None:
            if commits is None:  # FastStream commits (NACK_ON_ERROR) before the next poll
                await handling.handle_batch(msg.raw_message)
                return
            try:
                await handling.handle_batch(msg.raw_message)
            except BaseException:
                await msg.nack()  # rewind: the batch is polled again
                raise
            records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
            commits.handled(msg.consumer, records)
            if self._commit_now:
                await commits.drain()

        if commits is not None:
            self._committers.append(commits)

        on_batch.__name__ = f"{self.service}_{topic.replace('.', '_')}"
        on_batch.__doc__ = description or (model.__doc__ or "").strip().splitlines()[0]
        subscriber = self.broker.subscriber(
            topic,
            group_id=f"{self.topics.prefix}{group_id}",
            decoder=_raw_records,
            batch=True,
            max_records=max_records or k.max_batch_records,
            batch_timeout_ms=batch_timeout_ms or k.batch_timeout_ms,
            ack_policy=AckPolicy.NACK_ON_ERROR if commits is None else AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            group_instance_id=group_instance_id,
            **({"fetch_max_wait_ms": fetch_wait_ms, "fetch_min_bytes": 1 << 20} if fetch_wait_ms else {}),
            title=title or f"{topic}:{self.service}",
            description=on_batch.__doc__,
        )
        subscriber(on_batch)
        _poll(subscriber, linger_ms)

    async def finish_commits(self) -> None:
        """Before the consumers stop: wait for the commits in flight, and let every later batch wait for its own."""
        self._commit_now = True
        for commits in self._committers:
            await commits.drain()

    async def dead_letter(self, record: ConsumerRecord, error_type: str, error: str) -> None:
        """Publish ``record`` to this service's dead-letter topic with the reason (the ``DeadLetterSink``)."""
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
            headers=record_headers(record),
        )
        metrics.DEAD_LETTERS.labels(self.service, record.topic, error_type).inc()
        log.warning(
            "dead-lettered %s[%d]@%d (%s): %s", record.topic, record.partition, record.offset, error_type, error[:300],
            extra={"topic": record.topic, "error_type": error_type},
        )
        await self.publish_one(self.topics.deadletter(self.service), letter, key=letter.key)

    # -- topics ----------------------------------------------------------------------------------

    async def ensure_topics(self, names: Sequence[str] | None = None) -> None:
        """Create the topics this service uses (``names``, default: its topics in the topology) if
        missing: a service's Kafka principal may create its own topics and no others (``acls``)."""
        await ensure_topics(self.settings, names or self.own_topics())

    def own_topics(self) -> list[str]:
        if self.service not in SERVICES:
            return self.topics.all_topics()
        reads, writes = service_topics(self.service, self.topics)
        return list(dict.fromkeys((*reads, *writes)))


class BackgroundCommits:
    """One batch subscriber's commits, off the poll loop: handled offsets are merged into ``pending`` and
    one task commits them, one commit at a time, each carrying the newest position of every partition."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.pending: dict[TopicPartition, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.task: asyncio.Task | None = None

    def handled(self, consumer: AIOKafkaConsumer, records: Iterable[ConsumerRecord]) -> None:
        """The effects of ``records`` are durable: their offsets may be committed."""
        self.consumer = consumer
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            if r.offset + 1 > self.pending.get(tp, -1):
                self.pending[tp] = r.offset + 1
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._commit_pending(), name=f"{self.topic}-commit")

    async def drain(self) -> None:
        """Until nothing handled is left uncommitted (or its commit failed and was logged)."""
        while self.task is not None and not self.task.done():
            await asyncio.wait([self.task])

    async def _commit_pending(self) -> None:
        while self.pending and self.consumer is not None:
            assigned = self.consumer.assignment()
            offsets = {tp: o for tp, o in self.pending.items() if tp in assigned}
            self.pending = {}
            if not offsets:
                continue  # revoked meanwhile: its new owner redelivers from the last commit
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:  # a rebalance, the broker away: those records are redelivered
                log.warning("commit of %s failed; handled records will be redelivered: %r", self.topic, exc)


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
