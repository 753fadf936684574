"""Unit test (no broker; the consumer is a fake that records commits and answers them on demand): a batch
consumer's commits run beside its polls, one at a time, each with the newest handled offsets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from modelyard_core.bus import BackgroundCommits

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


class FakeConsumer:
    def __init__(self, assigned=(A, B)) -> None:
        self.assigned = set(assigned)
        self.commits: list[dict[TopicPartition, int]] = []
        self.answers: list[asyncio.Future[None]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))
        answer = asyncio.get_running_loop().create_future()
        self.answers.append(answer)
        await answer


def records(tp: TopicPartition, *offsets: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=o) for o in offsets]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_commit_in_flight_and_the_next_carries_the_newest_offsets():
    consumer, commits = FakeConsumer(), BackgroundCommits("t")
    commits.handled(consumer, records(A, 0, 1, 2))
    await settle()
    assert consumer.commits == [{A: 3}]
    commits.handled(consumer, records(A, 3, 4))  # handled while the first commit is in flight
    commits.handled(consumer, [*records(A, 5), *records(B, 7)])
    await settle()
    assert consumer.commits == [{A: 3}]  # nothing else is sent before the first is answered
    consumer.answers[0].set_result(None)
    await settle()
    assert consumer.commits == [{A: 3}, {A: 6, B: 8}]
    consumer.answers[1].set_result(None)
    await commits.drain()
    assert commits.task.done() and commits.pending == {}


async def test_drain_waits_for_the_commit_in_flight():
    consumer, commits = FakeConsumer(), BackgroundCommits("t")
    commits.handled(consumer, records(A, 0))
    drained = asyncio.create_task(commits.drain())
    await settle()
    assert not drained.done()
    consumer.answers[0].set_result(None)
    await asyncio.wait_for(drained, 1)


async def test_a_revoked_partition_is_not_committed_and_a_failed_commit_does_not_stop_later_ones(caplog):
    consumer, commits = FakeConsumer(assigned=(B,)), BackgroundCommits("t")
    commits.handled(consumer, [*records(A, 0), *records(B, 0)])
    await settle()
    assert consumer.commits == [{B: 1}]  # A moved to another consumer: it redelivers from A's last commit
    consumer.answers[0].set_exception(CommitFailedError("rebalanced"))
    await settle()
    assert "handled records will be redelivered" in caplog.text
    commits.handled(consumer, records(B, 1))
    await settle()
    assert consumer.commits == [{B: 1}, {B: 2}]
    consumer.answers[1].set_result(None)
    await commits.drain()
