"""The offset tracker of the pipelined consumer: commit only past records that are all finished."""

from __future__ import annotations

from aiokafka import TopicPartition
from modelyard_inference.pipeline import OffsetTracker

P0, P1 = TopicPartition("t", 0), TopicPartition("t", 1)


def start(tracker: OffsetTracker, tp: TopicPartition, *offsets: int) -> int:
    for o in offsets:
        tracker.started(tp, o)
    return tracker.epoch(tp)


def test_the_position_stops_at_the_first_unfinished_record() -> None:
    tracker = OffsetTracker()
    epoch = start(tracker, P0, 10, 11, 12, 13)
    tracker.finished(P0, 12, epoch)
    tracker.finished(P0, 13, epoch)
    assert tracker.to_commit() == {}  # 10 and 11 still run: nothing may be committed
    tracker.finished(P0, 10, epoch)
    assert tracker.to_commit() == {P0: 11}
    tracker.finished(P0, 11, epoch)
    assert tracker.to_commit() == {P0: 14} and tracker.open(P0) == 0


def test_partitions_are_independent_and_commits_are_not_repeated() -> None:
    tracker = OffsetTracker()
    e0, e1 = start(tracker, P0, 0, 1), start(tracker, P1, 5)
    tracker.finished(P1, 5, e1)
    tracker.finished(P0, 1, e0)
    assert tracker.to_commit() == {P1: 6}
    tracker.committed({P1: 6})
    assert tracker.to_commit() == {}
    tracker.finished(P0, 0, e0)
    assert tracker.to_commit() == {P0: 2}
    assert tracker.to_commit(assigned=[P1]) == {}


def test_offsets_may_have_gaps() -> None:
    tracker = OffsetTracker()
    epoch = start(tracker, P0, 3, 7, 20)  # compaction or transaction markers leave holes
    for o in (20, 3, 7):
        tracker.finished(P0, o, epoch)
    assert tracker.to_commit() == {P0: 21}


def test_a_record_of_an_earlier_assignment_cannot_move_the_new_position() -> None:
    tracker = OffsetTracker()
    old = start(tracker, P0, 0, 1)
    tracker.forget([P0])  # revoked while 0 and 1 still run, then assigned back: both are fetched again
    new = start(tracker, P0, 0, 1)
    assert new != old
    tracker.finished(P0, 0, old)
    tracker.finished(P0, 1, old)
    assert tracker.to_commit() == {} and tracker.open(P0) == 2
    tracker.finished(P0, 0, new)
    assert tracker.to_commit() == {P0: 1}
