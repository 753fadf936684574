"""Quota alerts at 80% and 100% of a limit, once per threshold per period: pure decisions.

Alerts are decided on *levels*, not on crossings: a threshold is due when the period's total is at
or above it and the period's usage document does not yet record an alert for it. The sink writes
that record in the same single-document update as the counters that reached the threshold, so each
(tenant, metric, period, threshold) alerts once, and a limit lowered mid-period (a downgrade) alerts
on the next flush. The event id is derived from (tenant, metric, period, threshold): the same alert,
sent again after a crash, is recognisably the same event.

Measured limits:

* ``api_calls_per_day`` (the tier limit the router admits queries against): the day's ``queries``,
  i.e. admitted API calls (a cascaded query is one API call, two model calls);
* ``monthly_cost_usd`` and ``monthly_tokens`` (input + output) where the tenant sets a budget.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from modelyard_events import AlertMetric, TenantAlert, TenantSnapshot, UsageCounters, derived_id

THRESHOLDS_PCT = (80, 100)

Scope = Literal["day", "month"]


def alert_key(metric: AlertMetric, pct: int) -> str:
    """How a usage document records that an alert was sent (a field name: no dots)."""
    return f"{metric.value}_{pct}"


def alert_id(tenant_id: str, metric: AlertMetric, period: str, pct: int) -> str:
    return derived_id(tenant_id, "alert", metric.value, period, str(pct))


def measured(tenant: TenantSnapshot, scope: Scope, totals: UsageCounters) -> list[tuple[AlertMetric, float, float]]:
    """(metric, value, limit) of every limit of ``tenant`` that usage of this scope measures."""
    if scope == "day":
        limit = tenant.limits.api_calls_per_day
        return [(AlertMetric.API_CALLS_PER_DAY, float(totals.queries), float(limit))] if limit > 0 else []
    out: list[tuple[AlertMetric, float, float]] = []
    budget = tenant.budget
    if budget.monthly_cost_usd:
        out.append((AlertMetric.MONTHLY_COST_USD, totals.cost_usd, budget.monthly_cost_usd))
    if budget.monthly_tokens:
        out.append((AlertMetric.MONTHLY_TOKENS, float(totals.input_tokens + totals.output_tokens), float(budget.monthly_tokens)))
    return out


def reached(value: float, limit: float) -> list[int]:
    """Thresholds (in %) that ``value`` is at or above."""
    if limit <= 0:
        return []
    return [pct for pct in THRESHOLDS_PCT if value >= limit * pct / 100]


def due_alerts(tenant: TenantSnapshot, scope: Scope, period: str, totals: UsageCounters,
               already: Collection[str]) -> list[TenantAlert]:
    """Alerts to send now: thresholds reached by ``totals`` whose key is not in ``already``."""
    out: list[TenantAlert] = []
    for metric, value, limit in measured(tenant, scope, totals):
        for pct in reached(value, limit):
            if alert_key(metric, pct) in already:
                continue
            out.append(TenantAlert(
                event_id=alert_id(tenant.tenant_id, metric, period, pct),
                tenant_id=tenant.tenant_id, metric=metric, threshold_pct=pct, period=period,
                value=value, limit=limit,
            ))
    return out
