"""Unit tests (no broker): the retry / isolate / dead-letter policy of a batch consumer.

The handler is a fake that fails as told; dead letters are collected in a list (an in-memory fake of
the bus's dead-letter topic); pauses are recorded instead of slept. The real broker path is proven
by the system and fault tests (dead letters on the real topics).
"""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError, NotLeaderForPartitionError, TopicAuthorizationFailedError
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect

from modelyard_core.handling import BatchHandling, TransientError, is_transient
from modelyard_events import TenantAlert

TOPIC = "tenants.alerts"


def alert(i: int) -> bytes:
    return TenantAlert(tenant_id=f"t{i}", metric="api_calls_per_day", threshold_pct=80, value=i, limit=10,
                       period="2025-03-01").model_dump_json().encode()


def record(offset: int, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord(TOPIC, 0, offset, 0, 0, b"key", value, None, 3, len(value or b""), ())


class DeadLetters:
    def __init__(self) -> None:
        self.letters: list[tuple[int, str, str]] = []

    async def dead_letter(self, record: ConsumerRecord, error_type: str, error: str) -> None:
        self.letters.append((record.offset, error_type, error))


class Handler:
    """Records every call's offsets; raises ``fail(offsets, call_number)`` when that returns an exception."""

    def __init__(self, fail=lambda offsets, n: None) -> None:
        self.fail = fail
        self.calls: list[list[int]] = []

    async def __call__(self, deliveries) -> None:
        offsets = [d.record.offset for d in deliveries]
        self.calls.append(offsets)
        exc = self.fail(offsets, len(self.calls))
        if exc is not None:
            raise exc


def handling(handler, *, attempts: int = 3, tombstones: bool = False):
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    letters = DeadLetters()
    policy = BatchHandling(letters, "test-svc", TOPIC, TenantAlert, handler, attempts=attempts, tombstones=tombstones,
                           sleep=sleep, jitter=lambda: 0.5)
    return policy, letters, sleeps


def count(outcome: str) -> float:
    return REGISTRY.get_sample_value("modelyard_messages_total", {"service": "test-svc", "topic": TOPIC,
                                                                  "result": outcome}) or 0.0


async def test_a_good_batch_is_handled_once_and_counted():
    handler = Handler()
    policy, letters, sleeps = handling(handler)
    before = count("ok")
    await policy.handle_batch(tuple(record(o, alert(o)) for o in range(3)))
    assert handler.calls == [[0, 1, 2]] and letters.letters == [] and sleeps == []
    assert count("ok") == before + 3


async def test_bad_records_are_dead_lettered_with_the_reason_and_the_rest_goes_on():
    handler = Handler()
    policy, letters, _ = handling(handler)
    batch = (record(0, alert(0)), record(1, b"{not json"), record(2, b'{"tenant_id": "t"}'), record(3, None),
             record(4, alert(4)))
    await policy.handle_batch(batch)
    assert handler.calls == [[0, 4]]
    kinds = {offset: kind for offset, kind, _ in letters.letters}
    assert kinds == {1: "decode", 2: "schema", 3: "decode"}
    [schema_error] = [error for offset, _, error in letters.letters if offset == 2]
    assert schema_error.startswith("not a valid TenantAlert: ") and "metric" in schema_error


async def test_a_batch_of_only_bad_records_never_calls_the_handler():
    handler = Handler()
    policy, letters, _ = handling(handler)
    await policy.handle_batch(record(7, b"garbage"))  # FastStream hands a single record without a tuple
    assert handler.calls == [] and [o for o, _, _ in letters.letters] == [7]


async def test_tombstones_reach_the_handler_where_the_topic_carries_them():
    handler = Handler()
    policy, letters, _ = handling(handler, tombstones=True)
    await policy.handle_batch((record(0, None),))
    assert handler.calls == [[0]] and letters.letters == []


async def test_a_failure_that_goes_away_is_retried_with_growing_pauses():
    handler = Handler(fail=lambda offsets, n: ValueError("flaky") if n < 3 else None)
    policy, letters, sleeps = handling(handler, attempts=3)
    await policy.handle_batch(tuple(record(o, alert(o)) for o in range(2)))
    assert handler.calls == [[0, 1]] * 3 and letters.letters == []
    assert sleeps == [0.05 * 1.5, 0.2 * 1.5]  # jittered: delay x (1 + jitter), four times longer each time


async def test_a_poison_record_is_isolated_and_dead_lettered_and_the_others_are_handled():
    handler = Handler(fail=lambda offsets, n: ValueError(f"cannot handle {offsets}") if 1 in offsets else None)
    policy, letters, _ = handling(handler, attempts=2)
    errors_before = count("error")
    await policy.handle_batch(tuple(record(o, alert(o)) for o in range(3)))
    # The batch twice, then each record alone (the poison one twice).
    assert handler.calls == [[0, 1, 2], [0, 1, 2], [0], [1], [1], [2]]
    assert letters.letters == [(1, "processing", "ValueError: cannot handle [1]")]
    assert count("error") == errors_before + 1


async def test_a_single_failing_record_is_dead_lettered_without_a_second_round():
    handler = Handler(fail=lambda offsets, n: KeyError("missing"))
    policy, letters, _ = handling(handler, attempts=3)
    await policy.handle_batch((record(5, alert(5)),))
    assert handler.calls == [[5]] * 3
    assert letters.letters == [(5, "processing", "KeyError: 'missing'")]


@pytest.mark.parametrize("exc", [TransientError("view behind"), ConnectionError("reset"), TimeoutError(),
                                 KafkaConnectionError("down"), AutoReconnect("primary gone"),
                                 NotLeaderForPartitionError()])
async def test_broken_infrastructure_rewinds_the_batch_and_never_dead_letters(exc):
    handler = Handler(fail=lambda offsets, n: exc)
    policy, letters, sleeps = handling(handler, attempts=3)
    with pytest.raises(type(exc)):
        await policy.handle_batch(tuple(record(o, alert(o)) for o in range(4)))
    assert handler.calls == [[0, 1, 2, 3]] * 3 and letters.letters == []
    # A pause before the rewind too: redelivering at once would hammer what is down.
    assert sleeps == [0.05 * 1.5, 0.2 * 1.5, 0.8]


async def test_a_transient_failure_while_isolating_still_rewinds_the_whole_batch():
    def fail(offsets, n):
        if len(offsets) > 1:
            return ValueError("poison somewhere")
        return AutoReconnect("database gone") if offsets == [1] else None

    handler = Handler(fail=fail)
    policy, letters, _ = handling(handler, attempts=1)
    with pytest.raises(AutoReconnect):
        await policy.handle_batch(tuple(record(o, alert(o)) for o in range(3)))
    assert handler.calls == [[0, 1, 2], [0], [1]] and letters.letters == []


def test_what_counts_as_transient():
    assert is_transient(NotLeaderForPartitionError())  # a retriable Kafka error
    assert not is_transient(TopicAuthorizationFailedError())  # not retriable
    assert not is_transient(ValueError())
