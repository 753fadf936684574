"""Quota alert decisions (pure)."""

from __future__ import annotations

from modelyard_events import TIER_LIMITS, AlertMetric, Industry, TenantBudget, TenantSnapshot, Tier, UsageCounters

from modelyard_metering.alerts import alert_id, alert_key, due_alerts, reached


def tenant(tier: Tier = Tier.BASIC, **budget) -> TenantSnapshot:
    return TenantSnapshot(tenant_id="acme", version=1, name="Acme", tier=tier, industry=Industry.TECH,
                          limits=TIER_LIMITS[tier], budget=TenantBudget(**budget))


def test_thresholds_reached_are_levels():
    assert reached(799, 1000) == []
    assert reached(800, 1000) == [80]
    assert reached(1000, 1000) == [80, 100]
    assert reached(5, 0) == []


def test_daily_api_calls_alert_at_80_and_100_percent_once():
    t = tenant()  # basic: 1,000 API calls per day
    assert due_alerts(t, "day", "2025-03-04", UsageCounters(queries=799, calls=2_000), ()) == []
    [a80] = due_alerts(t, "day", "2025-03-04", UsageCounters(queries=800), ())
    assert (a80.metric, a80.threshold_pct, a80.period, a80.value, a80.limit) == (AlertMetric.API_CALLS_PER_DAY, 80, "2025-03-04", 800, 1000)
    # Already recorded: not again, however much more is used that day.
    assert due_alerts(t, "day", "2025-03-04", UsageCounters(queries=900), {alert_key(a80.metric, 80)}) == []
    [a100] = due_alerts(t, "day", "2025-03-04", UsageCounters(queries=1000), {alert_key(a80.metric, 80)})
    assert a100.threshold_pct == 100
    # A flush that jumps past both thresholds sends both.
    assert [a.threshold_pct for a in due_alerts(t, "day", "2025-03-05", UsageCounters(queries=1500), ())] == [80, 100]


def test_alert_ids_are_deterministic_per_tenant_metric_period_and_threshold():
    t = tenant()
    first = due_alerts(t, "day", "2025-03-04", UsageCounters(queries=850), ())[0]
    again = due_alerts(t, "day", "2025-03-04", UsageCounters(queries=870), ())[0]
    assert first.event_id == again.event_id == alert_id("acme", AlertMetric.API_CALLS_PER_DAY, "2025-03-04", 80)
    other_day = due_alerts(t, "day", "2025-03-05", UsageCounters(queries=850), ())[0]
    assert other_day.event_id != first.event_id


def test_monthly_budgets_only_where_set():
    assert due_alerts(tenant(), "month", "2025-03", UsageCounters(cost_usd=1e6, input_tokens=10**9), ()) == []
    t = tenant(monthly_cost_usd=10.0, monthly_tokens=1_000)
    alerts = due_alerts(t, "month", "2025-03", UsageCounters(cost_usd=8.0, input_tokens=600, output_tokens=500), ())
    assert {(a.metric, a.threshold_pct) for a in alerts} == {
        (AlertMetric.MONTHLY_COST_USD, 80), (AlertMetric.MONTHLY_TOKENS, 80), (AlertMetric.MONTHLY_TOKENS, 100)}
    tokens = next(a for a in alerts if a.metric is AlertMetric.MONTHLY_TOKENS)
    assert (tokens.value, tokens.limit, tokens.period) == (1_100, 1_000, "2025-03")
    # The daily scope measures only the API-call limit; the monthly scope never measures it.
    assert all(a.metric is not AlertMetric.API_CALLS_PER_DAY for a in alerts)
    assert [a.metric for a in due_alerts(t, "day", "2025-03-04", UsageCounters(queries=10_000, cost_usd=100), ())] \
        == [AlertMetric.API_CALLS_PER_DAY, AlertMetric.API_CALLS_PER_DAY]
