"""Unit tests (no broker): how a batch consumer polls.

A record that arrives while the consumer is idle must be handled on the next poll, not after an
extra sleep: FastStream's batch subscriber sleeps after an empty poll unless the bus replaces its poll.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from faststream.kafka.subscriber import usecase

from modelyard_core.bus import Bus
from modelyard_core.settings import Settings
from modelyard_events import QuerySubmitted


class FakeConsumer:
    def __init__(self, batches: list[dict]) -> None:
        self.batches = batches
        self.calls: list[dict] = []

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict:
        self.calls.append({"timeout_ms": timeout_ms, "max_records": max_records})
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(timeout_ms / 1000)  # nothing arrives within the timeout
        return {}


def record(partition: int, offset: int) -> ConsumerRecord:
    return ConsumerRecord("t", partition, offset, 0, 0, b"k", b"{}", None, 1, 2, ())


def make_subscriber(linger_ms: int = 0):
    settings = Settings(kafka={"batch_timeout_ms": 250, "max_batch_records": 7})
    bus = Bus(settings, "test")

    async def handler(deliveries):  # pragma: no cover - never called here
        raise AssertionError

    bus.consume("queries.submitted", QuerySubmitted, handler, group_id="g", linger_ms=linger_ms)
    (sub,) = bus.broker.subscribers
    return sub


@pytest.fixture
def subscriber():
    return make_subscriber()


def test_an_empty_poll_returns_without_sleeping(subscriber, monkeypatch):
    async def no_sleep(seconds: float) -> None:
        raise AssertionError(f"the subscriber slept {seconds}s after an empty poll")

    monkeypatch.setattr(usecase.anyio, "sleep", no_sleep)
    consumer = FakeConsumer([])
    assert asyncio.run(subscriber.get_msg(consumer)) == ()
    assert consumer.calls == [{"timeout_ms": 250, "max_records": 7}]


def test_a_poll_returns_the_records_of_every_partition_in_order(subscriber):
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    consumer = FakeConsumer([{a: [record(0, 5), record(0, 6)], b: [record(1, 9)]}])
    got = asyncio.run(subscriber.get_msg(consumer))
    assert [(r.partition, r.offset) for r in got] == [(0, 5), (0, 6), (1, 9)]


def test_an_empty_poll_does_not_linger(monkeypatch):
    consumer = FakeConsumer([])
    assert asyncio.run(make_subscriber(linger_ms=10_000).get_msg(consumer)) == ()
    assert len(consumer.calls) == 1


def test_a_lingering_poll_gathers_records_until_the_batch_is_full():
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    consumer = FakeConsumer([{a: [record(0, 1)]}, {b: [record(1, 4), record(1, 5)]}, {a: [record(0, 2)] * 4}])
    got = asyncio.run(make_subscriber(linger_ms=10_000).get_msg(consumer))
    assert [(r.partition, r.offset) for r in got] == [(0, 1), (1, 4), (1, 5)] + [(0, 2)] * 4
    # Each poll asks only for what still fits; a full batch ends the linger at once.
    assert [c["max_records"] for c in consumer.calls] == [7, 6, 4]


def test_a_lingering_poll_ends_at_its_deadline_with_what_it_has():
    a = TopicPartition("t", 0)
    consumer = FakeConsumer([{a: [record(0, 1)]}])
    got = asyncio.run(make_subscriber(linger_ms=30).get_msg(consumer))
    assert [r.offset for r in got] == [1]
    assert len(consumer.calls) >= 2 and all(c["timeout_ms"] <= 30 for c in consumer.calls[1:])
