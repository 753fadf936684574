"""The circuit breaker: open after N consecutive failures, fail fast, ONE trial when half-open."""

from __future__ import annotations

import pytest
from modelyard_inference.backend import CircuitBreaker, Result, State


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        permit = breaker.acquire()
        assert permit is not None
        breaker.record(permit, Result.FAILED)


def test_opens_after_consecutive_failures_and_fails_fast(clock: Clock) -> None:
    breaker = CircuitBreaker("m", failures=3, reset_s=10, clock=clock)
    fail(breaker, 2)
    assert breaker.state is State.CLOSED
    fail(breaker, 1)
    assert breaker.state is State.OPEN
    clock.now += 9.9
    assert breaker.acquire() is None


def test_a_success_resets_the_count(clock: Clock) -> None:
    breaker = CircuitBreaker("m", failures=3, reset_s=10, clock=clock)
    fail(breaker, 2)
    ok = breaker.acquire()
    breaker.record(ok, Result.OK)
    fail(breaker, 2)
    assert breaker.state is State.CLOSED


def test_half_open_lets_exactly_one_trial_through_among_concurrent_callers(clock: Clock) -> None:
    breaker = CircuitBreaker("m", failures=1, reset_s=10, clock=clock)
    fail(breaker, 1)
    clock.now += 10
    trial = breaker.acquire()
    assert trial is not None and trial.trial and breaker.state is State.HALF_OPEN
    # every other caller while the trial is out fails fast, however long it takes
    assert [breaker.acquire() for _ in range(100)] == [None] * 100
    clock.now += 60
    assert breaker.acquire() is None
    breaker.record(trial, Result.OK)
    assert breaker.state is State.CLOSED
    assert breaker.acquire() is not None


def test_a_failed_trial_reopens_for_another_full_reset_period(clock: Clock) -> None:
    breaker = CircuitBreaker("m", failures=1, reset_s=10, clock=clock)
    fail(breaker, 1)
    clock.now += 10
    trial = breaker.acquire()
    clock.now += 3
    breaker.record(trial, Result.FAILED)
    assert breaker.state is State.OPEN
    clock.now += 9.9
    assert breaker.acquire() is None
    clock.now += 0.1
    assert breaker.acquire().trial


def test_an_abandoned_trial_hands_the_trial_to_the_next_caller(clock: Clock) -> None:
    breaker = CircuitBreaker("m", failures=1, reset_s=10, clock=clock)
    fail(breaker, 1)
    clock.now += 10
    trial = breaker.acquire()
    breaker.record(trial, Result.ABANDONED)  # cancelled at shutdown, say: no verdict on the backend
    assert breaker.state is State.HALF_OPEN
    second = breaker.acquire()
    assert second is not None and second.trial
    assert breaker.acquire() is None


def test_results_of_calls_admitted_before_the_circuit_opened_change_nothing(clock: Clock) -> None:
    breaker = CircuitBreaker("m", failures=2, reset_s=10, clock=clock)
    stragglers = [breaker.acquire() for _ in range(5)]  # in flight when the backend dies
    fail(breaker, 2)
    assert breaker.state is State.OPEN
    breaker.record(stragglers[0], Result.OK)  # a late success must not close the circuit
    assert breaker.state is State.OPEN
    clock.now += 10
    trial = breaker.acquire()
    breaker.record(stragglers[1], Result.FAILED)  # nor a late failure decide the trial
    assert breaker.state is State.HALF_OPEN
    breaker.record(trial, Result.OK)
    for late in stragglers[2:]:  # older generation: ignored after closing too
        breaker.record(late, Result.FAILED)
    assert breaker.state is State.CLOSED and breaker.consecutive == 0
