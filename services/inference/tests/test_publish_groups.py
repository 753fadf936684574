"""Unit test (no broker; the bus is a fake that records what is published and acknowledges on demand):
records that finish while a group awaits its acknowledgements go out together as the next group, and a
record counts as finished (its offset committable) only once its own group is acknowledged."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka import TopicPartition

from modelyard_core.bus import Outgoing
from modelyard_core.settings import Settings
from modelyard_events import QueryRouted
from modelyard_inference.pipeline import PipelinedConsumer


class FakeBus:
    """Each ``publish`` is one send-and-wait: recorded, then held until the test acknowledges it."""

    def __init__(self) -> None:
        settings = Settings(_env_file=None)
        self.settings, self.topics, self.service = settings, settings.topics, "inference"
        self.sends: list[list[str]] = []
        self.acks: list[asyncio.Future[None]] = []

    async def publish(self, outgoing) -> None:
        self.sends.append([o.key for o in outgoing])
        ack = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        await ack


def out(key: str) -> list[Outgoing]:
    return [Outgoing("usage", SimpleNamespace(), key), Outgoing("outcomes", SimpleNamespace(), key)]


async def until(condition, timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def consumer(bus: FakeBus, **options) -> PipelinedConsumer:
    async def handle(delivery):  # pragma: no cover - the tests hand events in directly
        raise AssertionError

    return PipelinedConsumer(bus, "queries.routed.slm", QueryRouted, handle, group_id="g", concurrency=8, **options)


async def test_records_finishing_while_a_group_is_in_flight_go_out_as_one_group():
    bus = FakeBus()
    pipe = consumer(bus)
    tp = TopicPartition("queries.routed.slm", 0)
    done: list[int] = []

    async def record(offset: int) -> None:
        pipe.tracker.started(tp, offset)
        await pipe._publish_in_group(out(f"q{offset}"))
        pipe.tracker.finished(tp, offset, 0)
        done.append(offset)

    first = asyncio.create_task(record(0))
    await until(lambda: len(bus.sends) == 1)
    later = [asyncio.create_task(record(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0.01)
    assert bus.sends == [["q0", "q0"]]  # the next group waits for the first one's acknowledgement
    assert done == [] and pipe.tracker.to_commit() == {}

    bus.acks[0].set_result(None)
    await first
    await until(lambda: len(bus.sends) == 2)
    assert bus.sends[1] == ["q1", "q1", "q2", "q2", "q3", "q3"]  # one send and one wait for three records
    assert done == [0] and pipe.tracker.to_commit() == {tp: 1}

    bus.acks[1].set_result(None)
    await asyncio.gather(*later)
    assert sorted(done) == [0, 1, 2, 3] and pipe.tracker.to_commit() == {tp: 4}


async def test_a_group_that_is_not_acknowledged_leaves_its_records_unfinished_and_is_sent_again():
    bus = FakeBus()
    pipe = consumer(bus)
    tp = TopicPartition("queries.routed.slm", 0)
    pipe.tracker.started(tp, 0)
    task = asyncio.create_task(pipe._publish_in_group(out("q0")))
    await until(lambda: len(bus.sends) == 1)
    bus.acks[0].set_exception(ConnectionError("broker away"))
    await until(lambda: len(bus.sends) == 2, timeout_s=5)  # retried after its back-off
    assert not task.done() and pipe.tracker.to_commit() == {}
    bus.acks[1].set_result(None)
    await task
    assert bus.sends == [["q0", "q0"], ["q0", "q0"]]


async def test_processed_records_publish_together_or_each_on_its_own():
    """Through ``_process`` (decoding replaced: the record stands for a decoded one): three records answered
    in the same turn of the loop make one group, or three sends when publishing together is off."""
    for together, expected in ((True, [["q0", "q0", "q1", "q1", "q2", "q2"]]),
                               (False, [["q0", "q0"], ["q1", "q1"], ["q2", "q2"]])):
        bus = FakeBus()
        pipe = consumer(bus, publish_together=together)
        tp = TopicPartition("queries.routed.slm", 0)

        async def decode(record):
            return SimpleNamespace(span=None, key=record.key)

        async def handle(delivery):
            return out(delivery.key)

        pipe._decode, pipe.handle = decode, handle
        records = [SimpleNamespace(offset=n, key=f"q{n}", topic=tp.topic, partition=0) for n in range(3)]
        tasks = []
        for r in records:
            pipe.tracker.started(tp, r.offset)
            tasks.append(asyncio.create_task(pipe._process(tp, 0, r)))
        while not all(t.done() for t in tasks):
            for ack in bus.acks:
                if not ack.done():
                    ack.set_result(None)
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)
        assert sorted(bus.sends) == sorted(expected), together
        assert pipe.tracker.to_commit() == {tp: 3}
