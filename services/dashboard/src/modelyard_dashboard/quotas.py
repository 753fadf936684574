"""Quota gauges: how full each limit of the tier is, its colour, and the tier that would fit.

A gauge turns amber at 80% and red at 100% of its limit (the thresholds metering alerts at). When it
is amber or red, it names the cheapest larger tier under which today's usage would be back below 80%
("Upgrade to Professional for 50 agents"), or the largest tier that holds it at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard_events import TIER_LIMITS, Tier

from .formatting import count, size

WARN_PCT = 80
FULL_PCT = 100
MIB = 1024 * 1024

#: Display order and wording of the tier's limits.
LIMITS = {
    "api_calls_per_day": ("API calls today", "API calls a day"),
    "agents": ("Agents", "agents"),
    "tickets_per_month": ("Tickets this month", "tickets a month"),
    "storage_mb": ("Storage", "of storage"),
}


def capacity(tier: Tier, limit: str) -> int:
    """The tier's limit in the unit the tenant API counts usage in (bytes for storage)."""
    value = getattr(TIER_LIMITS[tier], limit)
    return value * MIB if limit == "storage_mb" else value


def amount(limit: str, value: int) -> str:
    return size(value) if limit == "storage_mb" else count(value)


def level(current: int, allowed: int) -> str:
    """``ok``, ``warn`` (at or above 80%) or ``full`` (at or above 100%)."""
    if allowed <= 0:
        return "full" if current > 0 else "ok"
    pct = 100 * current / allowed
    return "full" if pct >= FULL_PCT else "warn" if pct >= WARN_PCT else "ok"


def fitting_tier(limit: str, current: int, tier: Tier) -> Tier | None:
    """The cheapest tier above ``tier`` that holds ``current`` below 80%, else the largest above it that
    holds it at all; None when no larger tier would hold it."""
    larger = list(Tier)[list(Tier).index(tier) + 1:]
    roomy = [t for t in larger if current < capacity(t, limit) * WARN_PCT / 100]
    if roomy:
        return roomy[0]
    holding = [t for t in larger if current <= capacity(t, limit)]
    return holding[-1] if holding else None


def advice(limit: str, current: int, tier: Tier) -> str:
    target = fitting_tier(limit, current, tier)
    noun = LIMITS[limit][1]
    if target is None:
        return f"No larger tier holds more {noun.removeprefix('of ')}: lower the usage or talk to us about a custom plan."
    return f"Upgrade to {target.value.capitalize()} for {amount(limit, capacity(target, limit))} {noun}."


@dataclass(frozen=True)
class Gauge:
    limit: str
    label: str
    current: int
    allowed: int
    unit: str
    period: str | None
    level: str
    advice: str | None

    @property
    def fraction(self) -> float:
        """How full, 0..1 (for drawing; the text gives the exact numbers)."""
        return min(1.0, self.current / self.allowed) if self.allowed > 0 else 1.0

    @property
    def pct(self) -> float:
        return 100 * self.current / self.allowed if self.allowed > 0 else 100.0

    def shown(self, value: int) -> str:
        return amount(self.limit, value)


def gauges(quotas: dict) -> list[Gauge]:
    """The API's ``/quotas`` answer as gauges, in the display order of ``LIMITS`` (unknown limits last)."""
    tier = Tier(quotas["subscription_tier"])
    order = list(LIMITS)
    lines = sorted(quotas["quotas"], key=lambda q: order.index(q["limit"]) if q["limit"] in order else len(order))
    out = []
    for q in lines:
        state = level(q["current"], q["allowed"])
        label = LIMITS.get(q["limit"], (q["limit"].replace("_", " ").capitalize(), ""))[0]
        out.append(Gauge(q["limit"], label, q["current"], q["allowed"], q["unit"], q.get("period"), state,
                         advice(q["limit"], q["current"], tier) if state != "ok" and q["limit"] in LIMITS else None))
    return out


def fullest(gauges_by_tenant: dict[str, list[Gauge]], n: int = 10) -> list[tuple[str, Gauge]]:
    """The ``n`` (tenant, gauge) pairs nearest their limit, fullest first; each tenant's fullest gauge only."""
    best = [(tenant, max(gs, key=lambda g: g.pct)) for tenant, gs in gauges_by_tenant.items() if gs]
    return sorted(best, key=lambda pair: (-pair[1].pct, pair[0]))[:n]
