"""Waiting for a query's outcome: one reply consumer per ingress process, many waiting requests.

A request registers its query id *before* the query is published, then awaits a future. A single
group-less consumer follows every partition of ``queries.outcomes`` from the end (positions are
fixed before the ingress reports ready, so no outcome of a query it submits can slip past) and
resolves the future whose query id an outcome carries. Outcomes of queries this process does not
wait for (other replicas, Kafka-native upstreams, timed-out requests, duplicates) are skipped after
a cheap parse. No consumer group means no rebalancing, no offsets to commit and nothing left behind
on the broker when the process goes away.

With no request waiting for ``idle_pause_s``, the consumer pauses: an idle ingress (or one beside
Kafka-native upstreams that publish most queries) does not read and parse every outcome of the
deployment for nothing. The next request calls ``ready()`` before it publishes its query, which
moves every position to the topic's current end and resumes: its outcome is written after that end,
so it cannot be skipped. Pausing happens only while no request waits, decided on the event loop that
also registers waiters, so a waiter is never left with a paused consumer.

Streamed requests (``stream: true``) wait on a queue instead of a future: the batches of live tokens
(``QueryChunk``) that a second listener reads from this instance's one partition of
``queries.streams`` go into it, and the outcome last. The stream listener works the same way
(group-less, positioned at the end before ready, paused while no stream waits), on one partition: the
one every query this instance submits names in its ``stream_to``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from modelyard_core.kafka_clients import make_consumer
from modelyard_core.settings import KafkaSettings
from modelyard_core.views import follow, stop_following
from modelyard_events import QueryChunk, QueryOutcome
from pydantic import ValidationError
from pydantic_core import from_json

from . import metrics

log = logging.getLogger(__name__)


class TooManyWaiting(Exception):
    """The in-flight map is full: the caller should answer 503."""


#: What a streamed request's queue receives: live batches, then its outcome.
StreamItem = QueryChunk | QueryOutcome


class PendingOutcomes:
    """The in-flight map: query id → future (or, for a streamed request, queue), bounded. No I/O."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._waiting: dict[str, asyncio.Future[QueryOutcome] | asyncio.Queue[StreamItem]] = {}
        self.streams = 0  # streamed requests among them

    def __len__(self) -> int:
        return len(self._waiting)

    def _admit(self, query_id: str) -> None:
        if len(self._waiting) >= self.capacity:
            raise TooManyWaiting(f"{self.capacity} requests are already waiting for outcomes")
        if query_id in self._waiting:
            raise ValueError(f"query {query_id!r} is already awaited")

    def expect(self, query_id: str) -> asyncio.Future[QueryOutcome]:
        self._admit(query_id)
        future: asyncio.Future[QueryOutcome] = asyncio.get_running_loop().create_future()
        self._waiting[query_id] = future
        return future

    def expect_stream(self, query_id: str) -> asyncio.Queue[StreamItem]:
        """A streamed request: its live batches and then its outcome arrive in the returned queue."""
        self._admit(query_id)
        queue: asyncio.Queue[StreamItem] = asyncio.Queue()
        self._waiting[query_id] = queue
        self.streams += 1
        return queue

    def forget(self, query_id: str) -> None:
        if isinstance(self._waiting.pop(query_id, None), asyncio.Queue):
            self.streams -= 1

    def wants(self, query_id: object) -> bool:
        return isinstance(query_id, str) and query_id in self._waiting

    def resolve(self, outcome: QueryOutcome) -> bool:
        """Hand ``outcome`` to its waiter; False when nobody waits (any more) or it was resolved already."""
        waiter = self._waiting.get(outcome.query_id)
        if isinstance(waiter, asyncio.Queue):
            self.forget(outcome.query_id)  # the stream ends with it: later batches are not wanted
            waiter.put_nowait(outcome)
            return True
        self._waiting.pop(outcome.query_id, None)
        if waiter is None or waiter.done():
            return False
        waiter.set_result(outcome)
        return True

    def offer(self, value: bytes | None) -> bool:
        """Resolve a waiter from a raw outcome record; anything not awaited is skipped without validation."""
        outcome = self._parse(value, QueryOutcome)
        return outcome is not None and self.resolve(outcome)

    def offer_chunk(self, value: bytes | None) -> bool:
        """Queue a raw ``QueryChunk`` record for its streamed request; anything else is skipped."""
        chunk = self._parse(value, QueryChunk)
        queue = self._waiting.get(chunk.query_id) if chunk is not None else None
        if not isinstance(queue, asyncio.Queue):
            return False
        queue.put_nowait(chunk)
        return True

    def _parse(self, value: bytes | None, model: type[QueryOutcome] | type[QueryChunk]):
        if not value:
            return None
        try:
            doc = from_json(value)
        except ValueError:
            return None
        if not isinstance(doc, dict) or not self.wants(doc.get("query_id")):
            return None
        try:
            return model.model_validate(doc)
        except ValidationError as exc:
            # The router and inference own the contract; a bad event is theirs to dead-letter. The
            # waiter is left to its timeout rather than given something that is not an outcome.
            log.warning("invalid %s for awaited query %s: %s", model.__name__, doc.get("query_id"), exc.errors()[:2])
            return None


class OutcomeListener:
    """Follows ``queries.outcomes`` (every partition) or one partition of ``queries.streams`` without a
    consumer group, and feeds a ``PendingOutcomes``."""

    def __init__(self, kafka: KafkaSettings, topic: str, pending: PendingOutcomes, *,
                 client_id: str = "modelyard-ingress-replies", idle_pause_s: float = 0.0,
                 one_partition: bool = False, partition: int | None = None,
                 offer: Callable[[bytes | None], bool] | None = None, busy: Callable[[], int] | None = None) -> None:
        self.kafka = kafka
        self.topic = topic
        self.pending = pending
        self.client_id = client_id
        self.idle_pause_s = idle_pause_s
        #: read one partition (``partition``, or one picked at random at start) instead of all of them
        self.one_partition = one_partition
        self.partition = partition
        self._offer = offer or pending.offer
        self._busy = busy or pending.__len__
        self._following = metrics.FOLLOWING_STREAMS if one_partition else metrics.FOLLOWING
        self.positioned = False
        self.paused = False
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._resuming: asyncio.Task | None = None
        self._busy_at = 0.0  # loop time when a request was last seen waiting

    async def start(self, *, timeout_s: float = 30.0) -> None:
        """Start following; returns once every partition read has a position at its current end."""
        self._consumer = self.new_consumer()
        await self._consumer.start()
        # Without a group, a subscription is assigned every partition (and follows new ones).
        self._consumer.subscribe([self.topic])
        if self.one_partition:
            partitions = sorted(tp.partition for tp in await asyncio.wait_for(self._assigned(), timeout_s))
            if self.partition is None:
                self.partition = random.choice(partitions)  # replicas spread over the partitions
            elif self.partition not in partitions:
                raise ValueError(f"{self.topic} has no partition {self.partition} (it has {len(partitions)})")
            self._consumer.unsubscribe()
            self._consumer.assign([TopicPartition(self.topic, self.partition)])
        self._task = asyncio.create_task(self._follow(), name=f"ingress-{self.topic}")
        await asyncio.wait_for(self._position(), timeout_s)
        self.positioned = True
        log.info("following %s on %d partitions", self.topic, len(self._consumer.assignment()))

    async def _assigned(self) -> set[TopicPartition]:
        assert self._consumer is not None
        while not (assigned := self._consumer.assignment()):
            await asyncio.sleep(0.02)
        return assigned

    def new_consumer(self) -> AIOKafkaConsumer:
        """The group-less consumer the listener follows the topic with (not connected yet)."""
        return make_consumer(self.kafka, client_id=self.client_id, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="latest")  # only outcomes of queries submitted from now on matter

    async def _position(self) -> None:
        assert self._consumer is not None
        # position() waits for the "latest" reset of each partition: from here on nothing is missed.
        for tp in await self._assigned():
            await self._consumer.position(tp)

    async def _follow(self) -> None:
        assert self._consumer is not None
        self._busy_at = asyncio.get_running_loop().time()
        self._following.set(1)
        await follow(self._consumer, self._on_record, what=f"ingress {self.topic}",
                     max_records=2000, retry_s=0.5, after_batch=self._maybe_pause)

    def _on_record(self, record: ConsumerRecord) -> None:
        self._offer(record.value)

    async def _maybe_pause(self) -> None:
        """After each poll: pause once nobody has waited for ``idle_pause_s`` (0: never pause)."""
        assert self._consumer is not None
        now = asyncio.get_running_loop().time()
        if self._busy() or self._resuming is not None:
            self._busy_at = now
        elif self.idle_pause_s and not self.paused and now - self._busy_at >= self.idle_pause_s:
            self._consumer.pause(*self._consumer.assignment())
            self.paused = True
            self._following.set(0)
            log.debug("no request waiting for %.1fs: stopped reading %s", self.idle_pause_s, self.topic)

    async def ready(self) -> None:
        """Call after registering a waiter and before publishing its query: resume (at the topic's
        end) if paused. Concurrent callers share one resumption; a broker error propagates."""
        if not self.paused:
            return
        if self._resuming is None:
            self._resuming = asyncio.ensure_future(self._resume())
            self._resuming.add_done_callback(lambda _: setattr(self, "_resuming", None))
        await asyncio.shield(self._resuming)

    async def _resume(self) -> None:
        assert self._consumer is not None
        assignment = self._consumer.assignment()
        ends = await self._consumer.end_offsets(list(assignment))
        for tp, end in ends.items():
            self._consumer.seek(tp, end)
        self._consumer.resume(*assignment)
        self.paused = False
        self._busy_at = asyncio.get_running_loop().time()
        self._following.set(1)
        log.debug("a request is waiting: reading %s again from its end", self.topic)

    async def stop(self) -> None:
        self.positioned = False
        await stop_following(self._task, self._consumer)
