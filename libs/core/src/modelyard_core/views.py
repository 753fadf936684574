"""Local, always-complete views of compacted topics (tenant snapshots, agents).

Every instance of a service needs *all* tenants, not a partition's share, so a view reads every
partition without a consumer group, from the beginning, and keeps following. ``sync()`` waits until
everything published before the call is visible, which lets the router tell "tenant created a
millisecond ago" apart from "unknown tenant" exactly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, ValidationError

from .kafka_clients import make_consumer
from .settings import Settings

log = logging.getLogger(__name__)

V = TypeVar("V", bound=BaseModel)


async def follow(consumer: AIOKafkaConsumer, on_record: Callable[[ConsumerRecord], object], *, what: str,
                 max_records: int = 1000, retry_s: float = 1.0,
                 after_batch: Callable[[], Awaitable[None]] | None = None) -> None:
    """Read a group-less consumer until cancelled, handing every record to ``on_record``; a fetch that
    fails (broker restart, network) is retried, so followers outlive broker outages."""
    while True:
        try:
            batches = await consumer.getmany(timeout_ms=200, max_records=max_records)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - keep following through broker restarts
            log.warning("%s: fetch failed, retrying", what, exc_info=True)
            await asyncio.sleep(retry_s)
            continue
        for records in batches.values():
            for record in records:
                on_record(record)
        if after_batch is not None:
            await after_batch()


async def stop_following(task: asyncio.Task | None, consumer: AIOKafkaConsumer | None) -> None:
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    if consumer is not None:
        try:
            await consumer.stop()
        except Exception as exc:  # noqa: BLE001 - stopping must not fail on a broker that went away meanwhile
            # (aiokafka re-raises the error of its last background metadata update from stop())
            log.warning("stopping a follower: %r", exc)


class CompactedTopicView(Generic[V]):
    def __init__(self, settings: Settings, topic: str, model: type[V], *, name: str,
                 on_change: Callable[[str, V | None], None] | None = None) -> None:
        self.settings = settings
        self.topic = topic
        self.model = model
        self.name = name
        self.on_change = on_change
        self.items: dict[str, V] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._progress = asyncio.Condition()

    def get(self, key: str) -> V | None:
        return self.items.get(key)

    async def start(self, *, timeout_s: float = 30.0) -> None:
        """Start following the topic and return once everything already in it has been read."""
        self._consumer = make_consumer(
            self.settings.kafka,
            client_id=f"modelyard-view-{self.name}",
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        # Without a group id, a subscription is assigned every partition of the topic (and follows
        # new partitions); with no committed offsets, reading starts at the beginning.
        self._consumer.subscribe([self.topic])
        self._task = asyncio.create_task(self._follow(), name=f"view-{self.name}")
        if not await self.sync(timeout_s=timeout_s):
            raise RuntimeError(f"view {self.name} could not read {self.topic} within {timeout_s:.0f}s")
        log.info("view %s loaded %d items from %s", self.name, len(self.items), self.topic)

    async def stop(self) -> None:
        await stop_following(self._task, self._consumer)

    async def sync(self, *, timeout_s: float = 5.0) -> bool:
        """Wait until every record published before this call has been applied (False on timeout)."""
        assert self._consumer is not None, "view not started"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        resubscribe_at = loop.time() + 1.0
        while not self._consumer.assignment():
            if loop.time() > deadline:
                log.warning("view %s: no partitions of %s assigned within %.1fs", self.name, self.topic, timeout_s)
                return False
            if loop.time() > resubscribe_at:
                # A topic created a moment ago may be missing from the first metadata answer, and the
                # client would only ask again after metadata_max_age_ms (5 min): subscribing again asks now.
                self._consumer.unsubscribe()
                self._consumer.subscribe([self.topic])
                resubscribe_at = loop.time() + 1.0
            await asyncio.sleep(0.02)
        tps = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(tps)

        def caught_up() -> bool:
            return all(self._positions.get(tp, 0) >= end for tp, end in ends.items())

        try:
            async with self._progress:
                await asyncio.wait_for(self._progress.wait_for(caught_up), max(0.0, deadline - loop.time()))
            return True
        except TimeoutError:
            log.warning("view %s did not catch up within %.1fs", self.name, timeout_s)
            return False

    async def _follow(self) -> None:
        assert self._consumer is not None
        await follow(self._consumer, lambda r: self._apply(r.key, r.value), what=f"view {self.name}",
                     after_batch=self._record_positions)

    async def _record_positions(self) -> None:
        assert self._consumer is not None
        async with self._progress:
            for tp in self._consumer.assignment():
                try:
                    self._positions[tp] = await self._consumer.position(tp)
                except Exception:  # noqa: BLE001
                    pass
            self._progress.notify_all()

    def _apply(self, raw_key: bytes | None, value: bytes | None) -> None:
        if raw_key is None:
            return
        key = raw_key.decode(errors="replace")
        if value is None:
            self.items.pop(key, None)
            if self.on_change:
                self.on_change(key, None)
            return
        try:
            item = self.model.model_validate_json(value)
        except ValidationError as exc:
            log.warning("view %s: skipping invalid record under %s: %s", self.name, key, exc.errors()[:2])
            return
        current = self.items.get(key)
        # Snapshots carry a growing version; never let a stale one replace a newer one.
        if current is not None and getattr(item, "version", 0) < getattr(current, "version", 0):
            return
        self.items[key] = item
        if self.on_change:
            self.on_change(key, item)
