"""Kafka and MongoDB seen from outside: publish raw records, read or count a topic, clean a run up.

An upstream producer, a downstream reader and a benchmark's clock all need the same few things; here
they are once, on aiokafka's public API. Every client comes from modelyard's client factory, so the
same helpers work against a secured cluster: pass ``KafkaSettings``, or a bootstrap address for a
plaintext one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from modelyard_core.kafka_clients import make_admin, make_consumer, make_producer
from modelyard_core.settings import KafkaSettings
from pymongo import AsyncMongoClient

Kafka = KafkaSettings | str


def kafka_settings(kafka: Kafka) -> KafkaSettings:
    """Connection settings from settings or a plaintext cluster's bootstrap address."""
    return KafkaSettings(bootstrap_servers=kafka) if isinstance(kafka, str) else kafka


async def produce_raw(kafka: Kafka, topic: str, pairs: Sequence[tuple[bytes | None, bytes | None]],
                      *, linger_ms: int = 10) -> None:
    """Send (key, value) pairs as they are, with one idempotent producer, and wait for every ack."""
    producer = make_producer(kafka_settings(kafka), enable_idempotence=True, linger_ms=linger_ms,
                             max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=v, key=k) for k, v in pairs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def drop_topics(kafka: Kafka, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a run's topics); the names deleted."""
    admin = make_admin(kafka_settings(kafka), client_id="modelyard-cleanup")
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
        return mine
    finally:
        await admin.close()


async def drop_database(mongo_url: str, name: str) -> None:
    mongo: AsyncMongoClient = AsyncMongoClient(mongo_url)
    try:
        await mongo.drop_database(name)
    finally:
        await mongo.close()


async def drop_run(kafka: Kafka, prefix: str, mongo_url: str, database: str) -> None:
    """Remove a run's topics and database: tests and benchmarks must not fill the shared servers."""
    await drop_topics(kafka, prefix)
    await drop_database(mongo_url, database)


class EndOffsets:
    """Counts the events on topics by their end offsets, without reading them (nearly free while the
    measured service works): events since ``start`` (or the last ``rebase``)."""

    def __init__(self, kafka: Kafka, topics: Sequence[str]) -> None:
        self.consumer = make_consumer(kafka_settings(kafka), enable_auto_commit=False, group_id=None)
        self.topics = list(topics)
        self.partitions: list[TopicPartition] = []
        self.base: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        await self.consumer.start()
        for topic in self.topics:
            # Asking for partition 0's end makes the client fetch the topic's metadata (and wait for a
            # topic created a moment ago); then every partition of it is known.
            await self.consumer.end_offsets([TopicPartition(topic, 0)])
            parts = self.consumer.partitions_for_topic(topic) or {0}
            self.partitions += [TopicPartition(topic, p) for p in sorted(parts)]
        await self.rebase()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def rebase(self) -> None:
        self.base = await self.consumer.end_offsets(self.partitions)

    async def produced(self) -> tuple[int, dict[TopicPartition, int]]:
        ends = await self.consumer.end_offsets(self.partitions)
        return sum(ends[tp] - self.base[tp] for tp in self.partitions), ends

    async def count(self) -> int:
        return (await self.produced())[0]

    async def wait_for(self, n: int, timeout_s: float, on_tick: Callable[[int], None] | None = None) -> dict[TopicPartition, int]:
        """Wait until ``n`` events arrived; the end offsets at that moment."""
        deadline = time.monotonic() + timeout_s
        while True:
            count, ends = await self.produced()
            if on_tick:
                on_tick(count)
            if count >= n:
                return ends
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} of {n} events on {', '.join(self.topics)} after {timeout_s:.0f}s")
            await asyncio.sleep(0.05)

    async def last_timestamp_ms(self, ends: dict[TopicPartition, int]) -> int:
        """Broker timestamp of the newest event among the partitions that got events."""
        grown = [tp for tp in self.partitions if ends[tp] > self.base[tp]]
        self.consumer.assign(grown)
        for tp in grown:
            self.consumer.seek(tp, ends[tp] - 1)
        newest, seen = 0, set()
        while len(seen) < len(grown):
            batch = await self.consumer.getmany(*grown, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    if r.offset == ends[tp] - 1:
                        seen.add(tp)
                        newest = max(newest, r.timestamp)
        return newest

    def tally(self, ends: dict[TopicPartition, int]) -> dict[str, int]:
        """Events per topic up to ``ends``."""
        out = dict.fromkeys(self.topics, 0)
        for tp in self.partitions:
            out[tp.topic] += ends[tp] - self.base[tp]
        return out


class TopicReader:
    """Reads a topic from its beginning without a consumer group, keeping every record (async context)."""

    def __init__(self, kafka: Kafka, topic: str) -> None:
        self.kafka = kafka_settings(kafka)
        self.topic = topic
        self.records: list[ConsumerRecord] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> TopicReader:
        self._consumer = make_consumer(self.kafka, enable_auto_commit=False, group_id=None,
                                       auto_offset_reset="earliest")
        await self._consumer.start()
        # No group: the subscription is assigned every partition, read from the beginning.
        self._consumer.subscribe([self.topic])
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self.records.extend(records)

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
        if self._consumer:
            await self._consumer.stop()

    async def wait_for(self, predicate: Callable[[list[ConsumerRecord]], Any], timeout_s: float, what: str) -> Any:
        """Wait until ``predicate(records)`` is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate(self.records)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what} on {self.topic} "
                                   f"({len(self.records)} records read)")
            await asyncio.sleep(0.05)
