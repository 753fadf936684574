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
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer
from modelyard_core.kafka_clients import make_consumer
from modelyard_core.settings import KafkaSettings
from modelyard_core.views import follow, stop_following
from modelyard_events import QueryOutcome
from pydantic import ValidationError
from pydantic_core import from_json

from . import metrics

log = logging.getLogger(__name__)


class TooManyWaiting(Exception):
    """The in-flight map is full: the caller should answer 503."""


class PendingOutcomes:
    """The in-flight map: query id → future, bounded. Pure bookkeeping, no I/O."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._waiting: dict[str, asyncio.Future[QueryOutcome]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def expect(self, query_id: str) -> asyncio.Future[QueryOutcome]:
        if len(self._waiting) >= self.capacity:
            raise TooManyWaiting(f"{self.capacity} requests are already waiting for outcomes")
        if query_id in self._waiting:
            raise ValueError(f"query {query_id!r} is already awaited")
        future: asyncio.Future[QueryOutcome] = asyncio.get_running_loop().create_future()
        self._waiting[query_id] = future
        return future

    def forget(self, query_id: str) -> None:
        self._waiting.pop(query_id, None)

    def wants(self, query_id: object) -> bool:
        return isinstance(query_id, str) and query_id in self._waiting

    def resolve(self, outcome: QueryOutcome) -> bool:
        """Hand ``outcome`` to its waiter; False when nobody waits (any more) or it was resolved already."""
        future = self._waiting.pop(outcome.query_id, None)
        if future is None or future.done():
            return False
        future.set_result(outcome)
        return True

    def offer(self, value: bytes | None) -> bool:
        """Resolve a waiter from a raw record value; anything not awaited is skipped without validation."""
        if not value:
            return False
        try:
            doc = from_json(value)
        except ValueError:
            return False
        if not isinstance(doc, dict) or not self.wants(doc.get("query_id")):
            return False
        try:
            outcome = QueryOutcome.model_validate(doc)
        except ValidationError as exc:
            # The router and inference own the contract; a bad outcome is theirs to dead-letter. The
            # waiter is left to its timeout rather than given something that is not an outcome.
            log.warning("invalid outcome for awaited query %s: %s", doc.get("query_id"), exc.errors()[:2])
            return False
        return self.resolve(outcome)


class OutcomeListener:
    """Follows ``queries.outcomes`` without a consumer group and feeds a ``PendingOutcomes``."""

    def __init__(self, kafka: KafkaSettings, topic: str, pending: PendingOutcomes, *,
                 client_id: str = "modelyard-ingress-replies", idle_pause_s: float = 0.0) -> None:
        self.kafka = kafka
        self.topic = topic
        self.pending = pending
        self.client_id = client_id
        self.idle_pause_s = idle_pause_s
        self.positioned = False
        self.paused = False
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._resuming: asyncio.Task | None = None
        self._busy_at = 0.0  # loop time when a request was last seen waiting

    async def start(self, *, timeout_s: float = 30.0) -> None:
        """Start following; returns once every partition has a position at its current end."""
        self._consumer = self.new_consumer()
        await self._consumer.start()
        # Without a group, a subscription is assigned every partition (and follows new ones).
        self._consumer.subscribe([self.topic])
        self._task = asyncio.create_task(self._follow(), name="ingress-outcomes")
        await asyncio.wait_for(self._position(), timeout_s)
        self.positioned = True
        log.info("following %s on %d partitions", self.topic, len(self._consumer.assignment()))

    def new_consumer(self) -> AIOKafkaConsumer:
        """The group-less consumer the listener follows the topic with (not connected yet)."""
        return make_consumer(self.kafka, client_id=self.client_id, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="latest")  # only outcomes of queries submitted from now on matter

    async def _position(self) -> None:
        assert self._consumer is not None
        while not self._consumer.assignment():
            await asyncio.sleep(0.02)
        # position() waits for the "latest" reset of each partition: from here on nothing is missed.
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)

    async def _follow(self) -> None:
        assert self._consumer is not None
        self._busy_at = asyncio.get_running_loop().time()
        metrics.FOLLOWING.set(1)
        await follow(self._consumer, lambda r: self.pending.offer(r.value), what="ingress outcomes",
                     max_records=2000, retry_s=0.5, after_batch=self._maybe_pause)

    async def _maybe_pause(self) -> None:
        """After each poll: pause once nobody has waited for ``idle_pause_s`` (0: never pause)."""
        assert self._consumer is not None
        now = asyncio.get_running_loop().time()
        if len(self.pending) or self._resuming is not None:
            self._busy_at = now
        elif self.idle_pause_s and not self.paused and now - self._busy_at >= self.idle_pause_s:
            self._consumer.pause(*self._consumer.assignment())
            self.paused = True
            metrics.FOLLOWING.set(0)
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
        metrics.FOLLOWING.set(1)
        log.debug("a request is waiting: reading %s again from its end", self.topic)

    async def stop(self) -> None:
        self.positioned = False
        await stop_following(self._task, self._consumer)
