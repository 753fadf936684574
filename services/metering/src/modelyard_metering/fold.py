"""Folding usage events into additive counters: pure, so it can be tested without a database.

Money and latency are summed as integers (nano-dollars, microseconds): integer addition is
associative, so a total does not depend on how the events were cut into flushes, and a replayed or
re-batched stream gives bit-for-bit the same totals. Each call's float is rounded once, to the
nearest nano-dollar (1e-9 USD) or microsecond, before it is added.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from modelyard_events import ModelClass, UsageCounters, UsageRecorded
from modelyard_usage import DOC_COUNTERS, MICROS_PER_MS, NANO_PER_USD, micros, nano_usd, to_counters

#: Upper bounds (ms) of the latency histogram kept in every usage document (``latency_le.<bound>``).
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000)

COUNTER_FIELDS = tuple(UsageCounters.model_fields)

#: Re-exported for the sink (the stored counters are defined by the read model, ``modelyard_usage``).
__all__ = ["COUNTER_FIELDS", "DOC_COUNTERS", "LATENCY_BUCKETS_MS", "Contribution", "Fold", "bucket_of", "contribution",
           "to_counters"]


def bucket_of(latency_ms: float) -> str:
    for bound in LATENCY_BUCKETS_MS:
        if latency_ms <= bound:
            return str(bound)
    return "inf"


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one usage event adds to every document it touches (computed once per event)."""

    counters: tuple[tuple[str, int], ...]
    bucket: str | None  # latency histogram bucket; None for a failed call (not timed)
    latency_ms: float


def contribution(e: UsageRecorded) -> Contribution:
    if e.shadow:
        return _shadow_contribution(e)
    c = [("calls", 1), ("input_tokens", e.input_tokens), ("output_tokens", e.output_tokens),
         ("cost_nusd", nano_usd(e.cost_usd)), ("slm_calls" if e.model_class is ModelClass.SLM else "llm_calls", 1)]
    if e.completions > 1:
        c.append(("extra_completions", e.completions - 1))
    if e.cascade_step:
        c.append(("cascade_steps", 1))
    else:
        # The all-LLM counterfactual makes one call per query: a cascade's later steps add nothing to it.
        c += [("queries", 1), ("llm_cost_nusd", nano_usd(e.llm_cost_usd))]
    if e.tenant_paid:
        c += [("tenant_paid_calls", 1), ("tenant_paid_tokens", e.input_tokens + e.output_tokens)]
    if e.error:
        c.append(("errors", 1))
        return Contribution(tuple(c), None, 0.0)
    c += [("latency_us_sum", micros(e.latency_ms)), ("latency_count", 1)]
    return Contribution(tuple(c), bucket_of(e.latency_ms), e.latency_ms)


def _shadow_contribution(e: UsageRecorded) -> Contribution:
    """A shadow-evaluation call counts only in the shadow counters: not a call, query, token or cost of the tenant's
    (nothing it is billed or limited by), and no latency of its traffic."""
    c = [("shadow_calls", 1), ("shadow_input_tokens", e.input_tokens), ("shadow_output_tokens", e.output_tokens),
         ("shadow_cost_nusd", nano_usd(e.cost_usd))]
    if e.shadow_agreed is not None:
        c += [("shadow_compared", 1), ("shadow_agreed", int(e.shadow_agreed))]
    return Contribution(tuple(c), None, 0.0)


@dataclass
class Fold:
    """The increments one flush applies to one usage document."""

    inc: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: Latency histogram increments: bucket upper bound (ms, or "inf") -> calls.
    hist: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latency_max: float = 0.0
    #: Highest source offset folded in, per partition: stored with the increments (the watermark).
    offsets: dict[int, int] = field(default_factory=dict)
    events: int = 0
    #: Whether this document keeps the latency histogram and maximum (per-model and per-day ones do).
    histogram: bool = True

    def add(self, e: UsageRecorded, partition: int, offset: int) -> None:
        self.add_contribution(contribution(e), partition, offset)

    def add_contribution(self, c: Contribution, partition: int, offset: int) -> None:
        self.events += 1
        inc = self.inc
        for key, value in c.counters:
            inc[key] += value
        if self.histogram and c.bucket is not None:
            self.hist[c.bucket] += 1
            if c.latency_ms > self.latency_max:
                self.latency_max = c.latency_ms
        if offset > self.offsets.get(partition, -1):
            self.offsets[partition] = offset

    def add_many(self, events: list[tuple[UsageRecorded, int]], partition: int) -> None:
        """``add`` for many events at once (the hot path of a flush: one pass per counter, no objects)."""
        if any(e.shadow for e, _ in events):  # rare: shadow calls are counted apart, one by one
            for e, offset in events:
                if e.shadow:
                    self.add(e, partition, offset)
            events = [(e, o) for e, o in events if not e.shadow]
        if not events:
            return
        calls = len(events)
        cascades = sum(1 for e, _ in events if e.cascade_step)
        slm = sum(1 for e, _ in events if e.model_class is ModelClass.SLM)
        timed = [e.latency_ms for e, _ in events if not e.error]
        sums = {
            "calls": calls, "cascade_steps": cascades, "queries": calls - cascades, "slm_calls": slm, "llm_calls": calls - slm,
            "errors": calls - len(timed),
            "input_tokens": sum(e.input_tokens for e, _ in events),
            "output_tokens": sum(e.output_tokens for e, _ in events),
            "cost_nusd": sum(round(e.cost_usd * NANO_PER_USD) for e, _ in events),
            "llm_cost_nusd": sum(round(e.llm_cost_usd * NANO_PER_USD) for e, _ in events if not e.cascade_step),
            "latency_us_sum": sum(round(ms * MICROS_PER_MS) for ms in timed),
            "latency_count": len(timed),
            "extra_completions": sum(e.completions - 1 for e, _ in events),
            "tenant_paid_calls": sum(1 for e, _ in events if e.tenant_paid),
            "tenant_paid_tokens": sum(e.input_tokens + e.output_tokens for e, _ in events if e.tenant_paid),
        }
        inc = self.inc
        for key, value in sums.items():
            if value:
                inc[key] += value
        if self.histogram and timed:
            hist = self.hist
            for ms in timed:
                hist[bucket_of(ms)] += 1
            self.latency_max = max(self.latency_max, max(timed))
        self.events += calls
        last = max(o for _, o in events)
        if last > self.offsets.get(partition, -1):
            self.offsets[partition] = last

    def merge(self, other: Fold) -> None:
        """Add another fold's increments (of events that all go to this document too)."""
        self.events += other.events
        inc = self.inc
        for key, value in other.inc.items():
            inc[key] += value
        if self.histogram:
            for bound, n in other.hist.items():
                self.hist[bound] += n
            if other.latency_max > self.latency_max:
                self.latency_max = other.latency_max
        for partition, offset in other.offsets.items():
            if offset > self.offsets.get(partition, -1):
                self.offsets[partition] = offset

    def counters(self) -> UsageCounters:
        return to_counters(self.inc)
