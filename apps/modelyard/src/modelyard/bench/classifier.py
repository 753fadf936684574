"""`modelyard bench classifier`: the router's decision code on one core, over a mix of helpdesk queries.

The queries (``data/bench_queries.jsonl``, shared with `modelyard bench router`) go through
``modelyard_router.offline.request_from_json`` and ``decision.decide`` exactly as `modelyard classify`
sends them, against four tenants (none, and three synthetic ones with different policies): with the
keyword analysis alone, and with a learned router model (default: the shipped helpdesk model), in the
same run.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections.abc import Callable
from importlib import resources

from modelyard_core.pricing import load_pricing
from modelyard_events import ModelClass, QueryRequest, RoutingPolicy, TenantSnapshot
from modelyard_router.complexity import load_complexity_model
from modelyard_router.decision import decide
from modelyard_router.learned import LearnedRouter
from modelyard_router.offline import request_from_json, synthetic_tenant


def bench_texts() -> list[dict]:
    """The benchmark's helpdesk queries as JSON objects (classify's input format)."""
    text = resources.files(__package__).joinpath("data/bench_queries.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def bench_queries() -> list[tuple[QueryRequest, TenantSnapshot | None]]:
    return [request_from_json(obj) for obj in bench_texts()]


def _bench_tenants() -> list[TenantSnapshot | None]:
    finance = synthetic_tenant("finance", "enterprise")
    tech = synthetic_tenant("tech", "basic")
    pinned = synthetic_tenant("healthcare", "professional").model_copy(
        update={"policy": RoutingPolicy(preference="quality", class_models={ModelClass.LLM: "gpt-4.1"}, max_class=ModelClass.LLM)}
    )
    return [None, finance, tech, pinned]


def measure(decide_one: Callable[[object], object], cases: list, n: int) -> dict:
    """Decisions per second on one pinned core, and per-decision latency, of ``decide_one`` over ``cases``."""
    m = len(cases)
    pinned_cpu = None
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        pinned_cpu = max(affinity)
        os.sched_setaffinity(0, {pinned_cpu})
    try:
        for i in range(min(n, 2_000)):  # warm caches and the allocator
            decide_one(cases[i % m])

        start, cpu_start = time.perf_counter(), time.process_time()
        for i in range(n):
            decide_one(cases[i % m])
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start

        latencies = [0] * n
        clock = time.perf_counter_ns
        for i in range(n):
            case = cases[i % m]
            t0 = clock()
            decide_one(case)
            latencies[i] = clock() - t0
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)

    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(n - 1, int(p * n))] / 1e6, 4)

    return {
        "decisions": n,
        "decisions_per_s": round(n / elapsed),
        "decisions_per_cpu_s": round(n / cpu),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] / 1e6, 4),
        "cases": m,
        "pinned_cpu": pinned_cpu,
    }


#: Issue 16's goal for a decision with a learned model, on one core.
GOAL_P99_MS, GOAL_PER_S = 0.2, 20_000


def bench_classifier(n: int = 50_000, router_model: str | None = "helpdesk") -> dict:
    """Decisions per second on one core and per-decision latency over a mix of helpdesk queries and tenants:
    the keyword analysis alone (the top-level figures), then with ``router_model`` in the same run."""
    pricing = load_pricing()
    queries = [request for request, _ in bench_queries()]
    tenants = _bench_tenants()
    cases = [(q, t) for q in queries for t in tenants]
    random.Random(0).shuffle(cases)

    out = measure(lambda c: decide(c[0], c[1], pricing), cases, n)
    out["complexity_model"] = load_complexity_model().version
    out["python"] = sys.version.split()[0]
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    if router_model:
        learned = LearnedRouter.load(router_model)
        with_model = measure(lambda c: decide(c[0], c[1], pricing, learned=learned), cases, n)
        with_model["router_model"] = learned.label
        with_model["goal"] = {"p99_ms": GOAL_P99_MS, "decisions_per_s": GOAL_PER_S,
                              "met_per_cpu_s": with_model["p99_ms"] <= GOAL_P99_MS and with_model["decisions_per_cpu_s"] >= GOAL_PER_S}
        out["with_model"] = with_model
    return out
