"""The report as plain code: proration by day, included volume, overage, savings, rounding, settling late usage."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction

import pytest
from modelyard_billing import Month, PriceList, TierChange
from modelyard_billing.money import per_million, prorate, round_half_up
from modelyard_billing.months import InvalidMonth, tier_on, tier_periods
from modelyard_billing.report import build_report, settle
from modelyard_events import Tier

NOV = Month(2026, 11)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PRICES = PriceList()


def at(day: int, hour: int = 12, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def doc(day: int, model: str, model_class: str, *, queries: int = 0, calls: int = 0, tin: int = 0, tout: int = 0,
        cost: int = 0, llm: int = 0, **more: int) -> dict:
    return {"tenant_id": "t1", "day": date(2026, 11, day).isoformat(), "model": model, "model_class": model_class,
            "queries": queries, "calls": calls, "input_tokens": tin, "output_tokens": tout, "cost_nusd": cost,
            "llm_cost_nusd": llm, **more}


def report(history, docs, prices=PRICES):
    return build_report(tenant_id="t1", organization_name="Acme", month=NOV, history=history, usage_docs=docs,
                        prices=prices, now=NOW)


def test_months_parse_and_reject():
    assert str(Month.parse("2026-11")) == "2026-11" and Month.parse("2024-02").days == 29
    assert Month.parse("2026-12").end == datetime(2027, 1, 1, tzinfo=UTC)
    assert Month.parse("2026-01").previous() == Month(2025, 12)
    for bad in ("2026-13", "2026-1", "26-11", "2026-11-01", "", "0000-01", "1999-12", "9999-12"):
        with pytest.raises(InvalidMonth):
            Month.parse(bad)


def test_rounding_is_half_up_once_per_line():
    assert round_half_up(Fraction(5, 2)) == 3 and round_half_up(Fraction(3, 2)) == 2  # not banker's rounding
    assert round_half_up(Fraction(-5, 2)) == -3
    assert prorate(7_500, 14, 30) == 3_500 and prorate(7_500, 1, 31) == 242  # 241.935… -> 242
    assert per_million(1_500_001, 400) == 600 and per_million(1_250_000, 1) == 1  # 1.25 -> 1


def test_a_day_is_billed_at_the_tier_in_effect_at_its_end():
    history = [TierChange(Tier.BASIC, at(10)), TierChange(Tier.PROFESSIONAL, at(15, 9)), TierChange(Tier.BASIC, at(15, 18)),
               TierChange(Tier.ENTERPRISE, at(20))]
    assert tier_on(history, date(2026, 11, 9)) is None  # before the tenant existed
    assert tier_on(history, date(2026, 11, 15)) is Tier.BASIC  # two changes that day: the last one counts
    periods = tier_periods(history, NOV)
    assert [(p.tier, p.first_day.day, p.last_day.day, p.days) for p in periods] == [
        (Tier.BASIC, 10, 19, 10), (Tier.ENTERPRISE, 20, 30, 11)]


def test_mid_month_upgrade_is_prorated_by_day_and_lines_add_up():
    r = report([TierChange(Tier.BASIC, at(1, 0, month=10)), TierChange(Tier.PROFESSIONAL, at(16))], [])
    assert [(p.tier, p.days, p.base_cents, p.included_tokens) for p in r.tier_periods] == [
        (Tier.BASIC, 15, 3_750, 1_000_000), (Tier.PROFESSIONAL, 15, 22_500, 10_000_000)]
    assert r.base_cents == 26_250 and r.included_tokens == 11_000_000
    assert r.overage_rate_cents_per_million == 300  # the tier the month ended on
    assert r.total_cents == r.base_cents + r.overage_cents == 26_250


def test_usage_by_class_and_model_overage_and_savings():
    docs = [
        doc(3, "gpt-4o-mini", "slm", queries=900, calls=900, tin=1_000_000, tout=500_000, cost=450_000_000, llm=4_000_000_000),
        doc(4, "gpt-4o-mini", "slm", queries=100, calls=100, tin=200_000, tout=100_000, cost=90_000_000, llm=800_000_000),
        doc(4, "gpt-4o", "llm", queries=50, calls=130, tin=300_000, tout=150_000, cost=2_250_000_000, llm=700_000_000,
            cascade_steps=80),
    ]
    r = report([TierChange(Tier.BASIC, at(1, 0, month=10))], docs)
    assert (r.usage.queries, r.usage.calls, r.usage.tokens) == (1_050, 1_130, 2_250_000)
    assert r.usage.model_cost_nusd == 2_790_000_000 and r.usage.llm_only_cost_nusd == 5_500_000_000
    assert r.usage.savings_nusd == 2_710_000_000 and r.usage.savings_pct == 49.27
    assert r.by_class["slm"].queries == 1_000 and r.by_class["llm"].cascade_steps == 80
    assert [(m.model, m.model_class.value, m.tokens) for m in r.by_model] == [
        ("gpt-4o", "llm", 450_000), ("gpt-4o-mini", "slm", 1_800_000)]
    assert r.included_tokens == 2_000_000 and r.overage_tokens == 250_000
    assert r.overage_cents == 100  # 250,000 tokens at $4.00 per million
    assert r.total_cents == 7_500 + 100


def test_tenant_paid_tokens_are_not_billable():
    docs = [doc(2, "acme-private", "llm", queries=10, calls=10, tin=3_000_000, tout=0, tenant_paid_calls=10,
                tenant_paid_tokens=3_000_000)]
    r = report([TierChange(Tier.BASIC, at(1, 0, month=10))], docs)
    assert r.usage.tokens == 3_000_000 and r.billable_tokens == 0 and r.overage_cents == 0


def test_a_price_list_lays_what_it_names_over_the_defaults():
    prices = PriceList.model_validate({"version": "2027-01", "tiers": {"basic": {"base_cents": 9_900}}})
    assert prices.of(Tier.BASIC).base_cents == 9_900 and prices.of(Tier.BASIC).included_tokens == 2_000_000
    assert prices.of(Tier.ENTERPRISE).base_cents == 300_000
    with pytest.raises(ValueError, match="base_cents"):
        PriceList.model_validate({"tiers": {"basic": {"base_cents": -1}}})


def test_settle_records_late_usage_once_at_the_closed_rate():
    history = [TierChange(Tier.BASIC, at(1, 0, month=10))]
    early = [doc(3, "gpt-4o-mini", "slm", queries=10, calls=10, tin=1_900_000, tout=0, cost=1_000)]
    frozen = report(history, early)
    assert settle(frozen, [], frozen) is None  # nothing new: nothing to record

    late = [*early, doc(30, "gpt-4o-mini", "slm", queries=3, calls=3, tin=600_000, tout=0, cost=300)]
    first = settle(frozen, [], report(history, late))
    assert first is not None and first.adjustment_id is None
    assert (first.usage.queries, first.usage.tokens, first.usage.model_cost_nusd) == (3, 600_000, 300)
    assert first.overage_tokens == 500_000 and first.amount_cents == 200
    recorded = first.model_copy(update={"adjustment_id": "t1|2026-11|1"})
    assert settle(frozen, [recorded], report(history, late)) is None  # recorded once, not again

    later = [*late, doc(30, "gpt-4o", "llm", queries=1, calls=1, tin=250_000, tout=0, cost=5)]
    second = settle(frozen, [recorded], report(history, later))
    assert second is not None and (second.overage_tokens, second.amount_cents) == (250_000, 100)
