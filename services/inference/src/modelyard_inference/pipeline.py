"""A pipelined consumer for the inference pools: queries keep flowing, no batch waits for its slowest call.

Model calls take from milliseconds to a timeout of many seconds. A batch consumer (answer N, publish,
commit, fetch the next N) waits for the slowest call of every batch: one hung backend call stalls
hundreds of finished queries, and the calls in flight fall to a handful at each batch's tail. Here every
record runs as soon as a slot (of ``concurrency``) is free, and offsets are committed by a tracker.

The commit rule is the same as everywhere in modelyard, per partition: an offset is committed only when
every record before it is finished, i.e. its events are acknowledged by the broker. A crash therefore
redelivers whatever was not finished; redelivered work produces the same deterministic event ids, so
downstream recognises the duplicates. Bad records go to the service's dead-letter topic, as with
``Bus.consume``; publishing is retried until it succeeds (never given up while the broker is away).

Records that finish while an earlier group's events await their acknowledgements are published together,
as the next group: one send and one acknowledgement wait per group rather than per record (at low rates a
group is one record, at high rates it is many, and the producer sends them in fewer requests). A record
counts as finished only when its group is acknowledged, so the commit rule above is unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from modelyard_core import metrics as core_metrics
from modelyard_core.bus import Bus, Delivery, Outgoing, Rejected, decode_record
from modelyard_core.kafka_clients import make_consumer

from . import metrics

log = logging.getLogger(__name__)

E = TypeVar("E", bound=BaseModel)
Handle = Callable[[Delivery[E]], Awaitable[list[Outgoing]]]


class OffsetTracker:
    """Per partition: the offsets started, in order; the committable position is the first one not finished.

    Each assignment of a partition is an epoch: a record started under an earlier assignment (still
    running when the partition was revoked) cannot move the position of a later one.
    """

    def __init__(self) -> None:
        self._started: dict[TopicPartition, deque[int]] = {}
        self._finished: dict[TopicPartition, set[int]] = {}
        self._position: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._epoch: dict[TopicPartition, int] = {}

    def epoch(self, tp: TopicPartition) -> int:
        return self._epoch.get(tp, 0)

    def started(self, tp: TopicPartition, offset: int) -> None:
        self._started.setdefault(tp, deque()).append(offset)
        self._finished.setdefault(tp, set())

    def finished(self, tp: TopicPartition, offset: int, epoch: int) -> None:
        if epoch != self.epoch(tp) or tp not in self._started:
            return  # the partition was revoked meanwhile: its new owner decides
        started, finished = self._started[tp], self._finished[tp]
        finished.add(offset)
        while started and started[0] in finished:
            head = started.popleft()
            finished.discard(head)
            self._position[tp] = head + 1

    def open(self, tp: TopicPartition) -> int:
        """Records of ``tp`` started and not yet committable."""
        return len(self._started.get(tp, ()))

    def to_commit(self, assigned: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Positions that moved since they were last committed (only of ``assigned`` partitions, if given)."""
        keep = set(assigned) if assigned is not None else None
        return {tp: pos for tp, pos in self._position.items()
                if self._committed.get(tp) != pos and (keep is None or tp in keep)}

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._started.pop(tp, None)
            self._finished.pop(tp, None)
            self._position.pop(tp, None)
            self._committed.pop(tp, None)
            self._epoch[tp] = self.epoch(tp) + 1


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: PipelinedConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.owner._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class PipelinedConsumer(Generic[E]):
    """Consume ``topic`` with up to ``concurrency`` records in progress; ``handle`` returns each record's events."""

    def __init__(self, bus: Bus, topic: str, model: type[E], handle: Handle[E], *, group_id: str,
                 concurrency: int, commit_interval_s: float = 0.5, revoke_grace_s: float = 10.0,
                 publish_together: bool = True) -> None:
        self.bus = bus
        self.topic = topic
        self.model = model
        self.handle = handle
        self.group_id = f"{bus.topics.prefix}{group_id}"
        self.concurrency = concurrency
        self.commit_interval_s = commit_interval_s
        self.revoke_grace_s = revoke_grace_s
        self.tracker = OffsetTracker()
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: dict[asyncio.Task, TopicPartition] = {}
        self._slot_freed = asyncio.Event()
        self._fetching: asyncio.Task | None = None
        self._committing: asyncio.Task | None = None
        self._stopping = False
        self.publish_together = publish_together
        self._group: list[Outgoing] = []  # events of the records waiting for the next group's send
        self._group_sent: asyncio.Future[None] | None = None  # resolved when that group is acknowledged
        self._publishing: asyncio.Task | None = None
        self._labels = (bus.service, topic)
        self._in_progress = metrics.IN_PROGRESS.labels(topic)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the group and start consuming. Call after the bus's broker is connected (events go out through it)."""
        self._consumer = self.new_consumer()
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_Rebalance(self))
        self._fetching = asyncio.create_task(self._fetch_loop(), name=f"{self.topic}-fetch")
        self._committing = asyncio.create_task(self._commit_loop(), name=f"{self.topic}-commit")
        log.info("consuming %s in group %s, %d records at a time", self.topic, self.group_id, self.concurrency)

    def new_consumer(self) -> AIOKafkaConsumer:
        """The group consumer records are fetched with (not connected yet)."""
        return make_consumer(
            self.bus.settings.kafka,
            group_id=self.group_id,
            client_id=f"modelyard-{self.bus.service}-consumer",
            enable_auto_commit=False,  # offsets move only through the tracker
            auto_offset_reset="earliest",
            max_poll_records=self.concurrency,
        )

    async def stop(self, timeout_s: float = 20.0) -> None:
        """Stop fetching, let the records in progress finish (at most ``timeout_s``), commit, leave the group."""
        self._stopping = True
        for task in (self._fetching, self._committing):
            if task is not None:
                task.cancel()
        if self._tasks:
            log.info("waiting up to %.0fs for %d records in progress", timeout_s, len(self._tasks))
            _, unfinished = await asyncio.wait(list(self._tasks), timeout=timeout_s)
            for task in unfinished:  # not committed: redelivered to whoever consumes next
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished, timeout=5)
        if self._consumer is not None:
            await self._commit()
            await self._consumer.stop()

    @property
    def in_progress(self) -> int:
        return len(self._tasks)

    # -- fetching ----------------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        assert self._consumer is not None
        while True:
            free = self.concurrency - len(self._tasks)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            try:
                batches = await self._consumer.getmany(timeout_ms=200, max_records=free)
            except KafkaError as exc:  # the consumer reconnects by itself; do not spin
                log.warning("fetch from %s failed: %r", self.topic, exc)
                await asyncio.sleep(0.5)
                continue
            for tp, records in batches.items():
                epoch = self.tracker.epoch(tp)
                for record in records:
                    self.tracker.started(tp, record.offset)
                    task = asyncio.create_task(self._process(tp, epoch, record))
                    self._tasks[task] = tp
                    self._in_progress.inc()
                    task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.pop(task, None)
        self._in_progress.dec()
        self._slot_freed.set()
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("record task failed; its offset stays uncommitted: %r", exc, exc_info=exc)

    # -- one record --------------------------------------------------------------------------------

    async def _process(self, tp: TopicPartition, epoch: int, record: ConsumerRecord) -> None:
        delivery = await self._decode(record)
        if delivery is not None:
            try:
                try:
                    outgoing = await self.handle(delivery)
                except Exception as exc:  # noqa: BLE001 - a poison record must not block its partition
                    core_metrics.MESSAGES.labels(*self._labels, "error").inc()
                    log.exception("giving up on %s[%d]@%d", record.topic, record.partition, record.offset)
                    if delivery.span is not None:
                        delivery.span.record_exception(exc)
                    reason = f"{type(exc).__name__}: {exc}"
                    await self._until_sent(lambda: self.bus.dead_letter(record, "processing", reason))
                else:
                    if self.publish_together:
                        await self._publish_in_group(outgoing)
                    else:
                        await self._until_sent(lambda: self.bus.publish(outgoing))
                    core_metrics.MESSAGES.labels(*self._labels, "ok").inc()
            finally:
                if delivery.span is not None:
                    delivery.span.end()
        self.tracker.finished(tp, record.offset, epoch)

    async def _until_sent(self, send: Callable[[], Awaitable[None]]) -> None:
        """Publish until the broker acknowledges; an unacknowledged record is never finished (nor committed)."""
        delay = 0.1
        while True:
            try:
                await send()
                return
            except Exception as exc:
                if self._stopping:
                    raise
                log.warning("publishing to the broker failed, retrying in %.1fs: %r", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _publish_in_group(self, outgoing: list[Outgoing]) -> None:
        """Join the next group; return once it is acknowledged (raise if publishing was given up: stopping)."""
        if not outgoing:
            return
        self._group.extend(outgoing)
        if self._group_sent is None:
            self._group_sent = asyncio.get_running_loop().create_future()
        sent = self._group_sent
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.create_task(self._publish_groups(), name=f"{self.topic}-publish")
        await asyncio.shield(sent)  # a record task cancelled at stop must not cancel the others' send

    async def _publish_groups(self) -> None:
        """Send group after group, each once the one before is acknowledged, until none is waiting."""
        while self._group_sent is not None:
            await asyncio.sleep(0)  # records finishing in this same turn of the loop join the group
            events, sent = self._group, self._group_sent
            self._group, self._group_sent = [], None
            try:
                await self._until_sent(lambda events=events: self.bus.publish(events))
            except asyncio.CancelledError:
                sent.cancel()
                raise
            except Exception as exc:  # given up (stopping): the group's records stay unfinished, uncommitted
                sent.set_exception(exc)
                return
            sent.set_result(None)

    async def _decode(self, record: ConsumerRecord) -> Delivery[E] | None:
        decoded = decode_record(record, self.model, service=self.bus.service)
        if isinstance(decoded, Rejected):
            await self._until_sent(lambda: self.bus.dead_letter(record, decoded.error_type, decoded.error))
            return None
        return decoded

    # -- committing --------------------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.commit_interval_s)
            await self._commit()

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        assert self._consumer is not None
        assigned = self._consumer.assignment()
        offsets = self.tracker.to_commit(assigned if only is None else assigned & only)
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance in progress, the broker away: the next tick tries again
            log.info("commit of %d partitions of %s deferred: %r", len(offsets), self.topic, exc)
            return
        self.tracker.committed(offsets)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before a partition moves on: let its records finish (briefly), commit them, forget it."""
        mine = [t for t, tp in self._tasks.items() if tp in revoked]
        if mine and not self._stopping:
            await asyncio.wait(mine, timeout=self.revoke_grace_s)
        await self._commit(only=set(revoked))
        self.tracker.forget(revoked)
