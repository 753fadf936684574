"""The in-flight map the reply consumer feeds."""

from __future__ import annotations

import asyncio

import pytest
from modelyard_events import OutcomeStatus, QueryOutcome
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
