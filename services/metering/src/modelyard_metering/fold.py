"""Folding usage events into additive counters: pure, so it can be tested without a database."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from modelyard_events import ModelClass, UsageCounters, UsageRecorded

#: Upper bounds (ms) of the latency histogram kept in every usage document.
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000)

COUNTER_FIELDS = tuple(UsageCounters.model_fields)


def bucket_of(latency_ms: float) -> str:
    for bound in LATENCY_BUCKETS_MS:
        if latency_ms <= bound:
            return str(bound)
    return "inf"


@dataclass
class Fold:
    """The increments one flush applies to one usage document."""

    inc: dict[str, float] = field(default_factory=lambda: defaultdict(int))
    latency_max: float = 0.0
    #: Highest source offset folded in, per partition: stored with the increments (the watermark).
    offsets: dict[int, int] = field(default_factory=dict)

    def add(self, e: UsageRecorded, partition: int, offset: int) -> None:
        inc = self.inc
        inc["calls"] += 1
        if not e.cascade_step:
            inc["queries"] += 1
        if e.error:
            inc["errors"] += 1
        if e.cascade_step:
            inc["cascade_steps"] += 1
        inc["slm_calls" if e.model_class is ModelClass.SLM else "llm_calls"] += 1
        inc["input_tokens"] += e.input_tokens
        inc["output_tokens"] += e.output_tokens
        inc["cost_usd"] += e.cost_usd
        if not e.cascade_step:
            # The all-LLM counterfactual makes one call per query: a cascade's later steps add nothing to it.
            inc["llm_cost_usd"] += e.llm_cost_usd
        if not e.error:
            inc["latency_ms_sum"] += e.latency_ms
            inc["latency_count"] += 1
            inc[f"latency_le.{bucket_of(e.latency_ms)}"] += 1
            self.latency_max = max(self.latency_max, e.latency_ms)
        self.offsets[partition] = max(offset, self.offsets.get(partition, -1))

    def counters(self) -> UsageCounters:
        return UsageCounters(**{k: (int(v) if not k.endswith("_usd") and k != "latency_ms_sum" else v)
                                for k, v in self.inc.items() if k in COUNTER_FIELDS})


def counters_of(doc: dict | None) -> UsageCounters:
    doc = doc or {}
    return UsageCounters(**{k: doc.get(k, 0) for k in COUNTER_FIELDS})
