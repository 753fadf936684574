"""The in-flight map the reply consumers (outcomes, streamed batches) feed."""

from __future__ import annotations

import pytest
from modelyard_events import ChoiceDelta, ModelClass, OutcomeStatus, QueryChunk, QueryOutcome
from modelyard_ingress.replies import PendingOutcomes, TooManyWaiting


def raw(query_id: str, **fields) -> bytes:
    return QueryOutcome(tenant_id="t", query_id=query_id, status=OutcomeStatus.COMPLETED, answer="ok", **fields).model_dump_json().encode()


async def test_an_outcome_resolves_exactly_its_waiter():
    pending = PendingOutcomes(capacity=4)
    a, b = pending.expect("a"), pending.expect("b")
    assert pending.offer(raw("b")) is True
    assert b.done() and b.result().query_id == "b" and not a.done()
    assert pending.offer(raw("b")) is False  # a duplicate (redelivery) finds nobody
    assert len(pending) == 1


async def test_outcomes_nobody_waits_for_and_garbage_are_skipped():
    pending = PendingOutcomes(capacity=4)
    waiter = pending.expect("a")
    assert pending.offer(raw("someone-else")) is False
    assert pending.offer(b"{not json") is False
    assert pending.offer(b'"a"') is False
    assert pending.offer(None) is False
    assert pending.offer(b'{"query_id": "a", "status": "no-such-status"}') is False  # invalid: left to the timeout
    assert not waiter.done()


async def test_capacity_is_bounded_and_forgetting_frees_a_slot():
    pending = PendingOutcomes(capacity=2)
    pending.expect("a")
    pending.expect("b")
    with pytest.raises(TooManyWaiting):
        pending.expect("c")
    pending.forget("a")
    pending.expect("c")
    assert pending.offer(raw("a")) is False  # a forgotten (timed-out) query's late outcome is ignored


def chunk(query_id: str, seq: int = 0) -> bytes:
    return QueryChunk(tenant_id="t", query_id=query_id, run="r", seq=seq, model="gpt-4o", model_class=ModelClass.LLM,
                      deltas=[ChoiceDelta(content="Hi")]).model_dump_json().encode()


async def test_a_streamed_request_gets_its_batches_then_its_outcome_and_nothing_after():
    pending = PendingOutcomes(capacity=4)
    queue = pending.expect_stream("s")
    plain = pending.expect("p")
    assert pending.streams == 1
    assert pending.offer_chunk(chunk("s")) is True
    assert pending.offer_chunk(chunk("p")) is False  # a request that did not ask to stream gets no batches
    assert pending.offer_chunk(chunk("nobody")) is False and pending.offer_chunk(b"garbage") is False
    assert pending.offer(raw("s")) is True
    first, second = queue.get_nowait(), queue.get_nowait()
    assert isinstance(first, QueryChunk) and first.seq == 0 and isinstance(second, QueryOutcome)
    assert pending.offer_chunk(chunk("s", 1)) is False and queue.empty()  # the stream ended with its outcome
    assert pending.streams == 0 and len(pending) == 1 and not plain.done()
