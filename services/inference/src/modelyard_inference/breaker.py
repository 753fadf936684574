"""A circuit breaker per model: a backend that keeps failing is cut off for a while, then tried once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from . import metrics

log = logging.getLogger(__name__)



class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Result(Enum):
    OK = "ok"
    FAILED = "failed"
    #: the attempt ended without a verdict on the backend (cancelled, or our own bug)
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class Permit:
    generation: int
    trial: bool


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failed attempts → after ``reset_s`` half-open.

    Half-open lets exactly ONE trial attempt through while every other caller fails fast; the trial's
    success closes the circuit, its failure opens it for another ``reset_s``. Attempts admitted before
    the circuit opened may finish later: their results belong to an older generation and change nothing.
    Single event loop: no lock needed, every transition happens between awaits.
    """

    def __init__(self, name: str, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.threshold = failures
        self.reset_s = reset_s
        self.clock = clock
        self.state = State.CLOSED
        self.consecutive = 0
        self.opened_at = 0.0
        self.generation = 0
        self._trial_out = False

    def acquire(self) -> Permit | None:
        """A permit to attempt a call, or None: fail fast."""
        if self.state is State.CLOSED:
            return Permit(self.generation, trial=False)
        if self.state is State.OPEN and self.clock() - self.opened_at >= self.reset_s:
            self._set(State.HALF_OPEN)
        if self.state is State.HALF_OPEN and not self._trial_out:
            self._trial_out = True
            return Permit(self.generation, trial=True)
        return None

    def record(self, permit: Permit, result: Result) -> None:
        if permit.trial:
            self._trial_out = False
            if result is Result.OK:
                self._close()
            elif result is Result.FAILED:
                self._open()
            # abandoned: stay half-open, the next caller becomes the trial
            return
        if permit.generation != self.generation or self.state is not State.CLOSED:
            return  # admitted before the circuit last opened: old news
        if result is Result.OK:
            self.consecutive = 0
        elif result is Result.FAILED:
            self.consecutive += 1
            if self.consecutive >= self.threshold:
                self._open()

    @property
    def is_open(self) -> bool:
        return self.state is not State.CLOSED

    def _open(self) -> None:
        self.opened_at = self.clock()
        self.generation += 1
        if self.state is not State.OPEN:
            log.warning("circuit of %s opened after %d consecutive failures", self.name, self.consecutive)
        self._set(State.OPEN)

    def _close(self) -> None:
        self.consecutive = 0
        self.generation += 1
        log.info("circuit of %s closed: trial call succeeded", self.name)
        self._set(State.CLOSED)

    def _set(self, state: State) -> None:
        self.state = state
        metrics.BREAKER_STATE.labels(self.name).set(list(State).index(state))
