"""Brute-force protection: failed attempts counted per key (a key id, a source address) in fixed
windows; once a key has had too many, further attempts are refused until its window ends.

The counts live in this process (a ``cachetools.TTLCache`` each, bounded in size): behind N replicas
an attacker gets at most N times the allowance, still far from enough to guess a 240-bit key.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from cachetools import TTLCache


class FailureGuard:
    def __init__(self, *, max_failures: int, window_s: float, max_keys: int = 100_000,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.timer = timer
        # An entry expires window_s after the window's first failure: [failures, window start].
        self._windows: TTLCache[str, list[float]] = TTLCache(max_keys, window_s, timer=timer)

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until ``key`` may try again, or None if it may now."""
        window = self._windows.get(key)
        if window is None or window[0] < self.max_failures:
            return None
        return max(1, math.ceil(window[1] + self.window_s - self.timer()))

    def failed(self, key: str) -> None:
        window = self._windows.get(key)
        if window is None:
            self._windows[key] = [1, self.timer()]
        else:
            window[0] += 1  # in place: the entry keeps the expiry of its window's start
