"""Scoring cost on one core: decisions per second and per-decision latency (p50/p99/max), as a dict.

The caller passes a callable per query so the same loop measures the scorer alone or the scorer
behind the keyword analysis. Pins the process to one CPU while it runs, like the router's
``bench classifier``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence


def bench(fn: Callable[[object], object], cases: Sequence[object], n: int = 20_000, warmup: int = 2_000) -> dict:
    m = len(cases)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pinned = None
    if affinity:
        pinned = max(affinity)
        os.sched_setaffinity(0, {pinned})
    try:
        for i in range(min(warmup, n)):
            fn(cases[i % m])
        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(n):
            fn(cases[i % m])
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        latencies = [0] * n
        clock = time.perf_counter_ns
        for i in range(n):
            case = cases[i % m]
            t0 = clock()
            fn(case)
            latencies[i] = clock() - t0
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(n - 1, int(p * n))] / 1e6, 4)

    return {
        "decisions": n,
        "cases": m,
        "decisions_per_s": round(n / elapsed),
        "decisions_per_cpu_s": round(n / cpu) if cpu else None,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] / 1e6, 4),
        "pinned_cpu": pinned,
        "python": sys.version.split()[0],
    }
