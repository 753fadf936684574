"""Quota alerts at 80% and 100% of a limit, once per threshold per period."""

from __future__ import annotations

from modelyard_events import AlertMetric, TenantAlert, TenantSnapshot, UsageCounters, derived_id

THRESHOLDS_PCT = (80, 100)


def crossed(before: float, after: float, limit: float) -> list[int]:
    """Thresholds (in %) that usage passed in this flush."""
    if limit <= 0:
        return []
    return [pct for pct in THRESHOLDS_PCT if before < limit * pct / 100 <= after]


def _alert(tenant_id: str, metric: AlertMetric, pct: int, period: str, value: float, limit: float) -> TenantAlert:
    return TenantAlert(
        # One id per tenant, metric, period and threshold: a re-sent alert is recognisably the same one.
        event_id=derived_id(tenant_id, "alert", metric.value, period, str(pct)),
        tenant_id=tenant_id, metric=metric, threshold_pct=pct, period=period, value=value, limit=limit,
    )


def daily_alerts(tenant: TenantSnapshot, day: str, delta: UsageCounters, totals: UsageCounters) -> list[TenantAlert]:
    limit = tenant.limits.api_calls_per_day
    return [
        _alert(tenant.tenant_id, AlertMetric.API_CALLS_PER_DAY, pct, day, totals.queries, limit)
        for pct in crossed(totals.queries - delta.queries, totals.queries, limit)
    ]


def monthly_alerts(tenant: TenantSnapshot, month: str, delta: UsageCounters, totals: UsageCounters) -> list[TenantAlert]:
    out: list[TenantAlert] = []
    budget = tenant.budget
    if budget.monthly_cost_usd:
        for pct in crossed(totals.cost_usd - delta.cost_usd, totals.cost_usd, budget.monthly_cost_usd):
            out.append(_alert(tenant.tenant_id, AlertMetric.MONTHLY_COST_USD, pct, month, totals.cost_usd, budget.monthly_cost_usd))
    if budget.monthly_tokens:
        used = totals.input_tokens + totals.output_tokens
        added = delta.input_tokens + delta.output_tokens
        for pct in crossed(used - added, used, budget.monthly_tokens):
            out.append(_alert(tenant.tenant_id, AlertMetric.MONTHLY_TOKENS, pct, month, used, budget.monthly_tokens))
    return out
