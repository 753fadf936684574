"""Folding usage events into counters (pure)."""

from __future__ import annotations

import random

import pytest
from datetime import UTC, datetime

from modelyard_events import UsageRecorded

from modelyard_metering.fold import Fold, bucket_of
from modelyard_usage import counters_of, nano_usd, to_counters


def usage(i: int = 0, **kw) -> UsageRecorded:
    fields = dict(tenant_id="t1", query_id=f"q{i}", model="gpt-4o-mini", model_class="slm", input_tokens=100,
                  output_tokens=20, cost_usd=0.000027, llm_cost_usd=0.00045, latency_ms=42.5,
                  time=datetime(2025, 3, 4, 12, tzinfo=UTC))
    fields.update(kw)
    return UsageRecorded(**fields)


def test_one_call_fills_every_counter():
    f = Fold()
    f.add(usage(), partition=2, offset=7)
    c = f.counters()
    assert (c.calls, c.queries, c.slm_calls, c.llm_calls, c.cascade_steps, c.errors) == (1, 1, 1, 0, 0, 0)
    assert (c.input_tokens, c.output_tokens) == (100, 20)
    assert c.cost_usd == 0.000027 and c.llm_cost_usd == 0.00045
    assert (c.latency_ms_sum, c.latency_count) == (42.5, 1)
    assert f.hist == {"50": 1} and f.latency_max == 42.5
    assert f.offsets == {2: 7}


def test_cascade_step_is_a_call_but_not_a_query_nor_a_counterfactual():
    f = Fold()
    f.add(usage(1), 0, 1)
    f.add(usage(1, model="gpt-4o", model_class="llm", cost_usd=0.0045, cascade_step=True), 0, 2)
    c = f.counters()
    assert (c.calls, c.queries, c.cascade_steps, c.slm_calls, c.llm_calls) == (2, 1, 1, 1, 1)
    # The all-LLM world answers the query once, with the LLM: the cascade's second call adds nothing to it.
    assert c.llm_cost_usd == 0.00045
    assert c.cost_usd == 0.000027 + 0.0045


def test_a_call_that_returned_several_completions_counts_them_all():
    f = Fold()
    f.add(usage(1, completions=3, output_tokens=60), 0, 1)
    f.add(usage(2), 0, 2)
    c = f.counters()
    assert (c.calls, c.completions, c.output_tokens) == (2, 4, 80)
    assert f.inc["extra_completions"] == 2  # stored as completions beyond one per call
    assert to_counters({"calls": 5}).completions == 5  # a document from before the counter existed


def test_failed_call_is_metered_but_not_timed():
    f = Fold()
    f.add(usage(error="backend down", latency_ms=30_000.0), 0, 0)
    c = f.counters()
    assert (c.calls, c.errors, c.latency_count, c.latency_ms_sum) == (1, 1, 0, 0.0)
    assert not f.hist


def test_watermark_is_the_highest_offset_per_partition():
    f = Fold()
    for partition, offset in [(0, 5), (1, 3), (0, 9), (0, 6)]:
        f.add(usage(offset), partition, offset)
    assert f.offsets == {0: 9, 1: 3}


def test_histogram_buckets():
    assert [bucket_of(x) for x in (0, 10, 10.01, 999, 30_000, 30_001)] == ["10", "10", "25", "1000", "30000", "inf"]


def test_totals_do_not_depend_on_how_the_stream_is_cut():
    rng = random.Random(7)
    events = [usage(i, cost_usd=rng.random() / 100, llm_cost_usd=rng.random() / 10, latency_ms=rng.random() * 900)
              for i in range(2_000)]

    def total(cuts: list[int]) -> dict:
        doc: dict = {}
        bounds = [0, *cuts, len(events)]
        for lo, hi in zip(bounds, bounds[1:]):
            f = Fold()
            for i in range(lo, hi):
                f.add(events[i], 0, i)
            for k, v in [*f.inc.items(), *((f"le{b}", n) for b, n in f.hist.items())]:
                doc[k] = doc.get(k, 0) + v
        return doc

    one, many = total([]), total(sorted(rng.sample(range(1, 2_000), 150)))
    assert sum(v for k, v in one.items() if k.startswith("le")) == 2_000
    assert one == many  # integers: exactly equal, not approximately
    assert counters_of(one).cost_usd == sum(nano_usd(e.cost_usd) for e in events) / 1e9
    assert to_counters(one) == to_counters(many)


def test_merged_group_fold_equals_event_by_event_fold():
    rng = random.Random(3)
    events = [usage(i, latency_ms=rng.random() * 3_000, cascade_step=i % 4 == 0, error="x" if i % 17 == 0 else None)
              for i in range(300)]
    one_by_one, grouped = Fold(), Fold()
    group = Fold()
    for i, e in enumerate(events):
        one_by_one.add(e, 1, i)
        group.add(e, 1, i)
    grouped.merge(group)
    assert (dict(grouped.inc), dict(grouped.hist), grouped.offsets, grouped.latency_max, grouped.events) == \
        (one_by_one.inc, one_by_one.hist, one_by_one.offsets, one_by_one.latency_max, one_by_one.events)
    no_histogram = Fold(histogram=False)
    no_histogram.merge(group)
    assert no_histogram.inc == one_by_one.inc and not no_histogram.hist and no_histogram.latency_max == 0


def test_folding_many_at_once_equals_one_by_one():
    rng = random.Random(9)
    events = [(usage(i, model_class=rng.choice(["slm", "llm", "llm_plus"]), latency_ms=rng.random() * 40_000,
                     cascade_step=rng.random() < 0.2, error="x" if rng.random() < 0.05 else None,
                     cost_usd=rng.random() / 7, llm_cost_usd=rng.random() / 3, completions=rng.choice([1, 1, 3, 5])),
               100 + i) for i in range(500)]
    one, many = Fold(), Fold()
    for e, offset in events:
        one.add(e, 4, offset)
    many.add_many(events[:200], 4)
    many.add_many(events[200:], 4)

    def nonzero(d: dict) -> dict:
        return {k: v for k, v in d.items() if v}

    assert nonzero(many.inc) == nonzero(one.inc) and nonzero(many.hist) == nonzero(one.hist)
    assert (many.offsets, many.latency_max, many.events) == (one.offsets, one.latency_max, one.events)


def test_shadow_calls_are_counted_apart_from_the_tenants_calls_tokens_and_cost():
    shadow = dict(model="gpt-4o", model_class="llm", cost_usd=0.0045, input_tokens=300, output_tokens=50, shadow=True)
    one, many = Fold(), Fold()
    events = [usage(1), usage(1, shadow_agreed=True, **shadow), usage(2, shadow_agreed=False, **shadow),
              usage(3, error="timeout", shadow_agreed=None, **shadow), usage(4)]
    for offset, e in enumerate(events):
        one.add(e, 0, offset)
    many.add_many([(e, offset) for offset, e in enumerate(events)], 0)
    for f in (one, many):
        c = f.counters()
        assert (c.calls, c.queries, c.llm_calls, c.errors, c.input_tokens) == (2, 2, 0, 0, 200)
        assert c.cost_usd == 2 * 0.000027 and c.latency_count == 2  # the tenant's bill and latency: its own calls only
        assert (c.shadow_calls, c.shadow_compared, c.shadow_agreed) == (3, 2, 1)
        assert (c.shadow_input_tokens, c.shadow_output_tokens) == (900, 150)
        assert c.shadow_cost_usd == pytest.approx(3 * 0.0045)
        assert f.offsets == {0: 4}
