"""Quota gauges: amber at 80%, red at 100%, and the tier that would fit."""

from __future__ import annotations

import pytest
from modelyard_dashboard.quotas import MIB, advice, fitting_tier, fullest, gauges, level
from modelyard_events import Tier


@pytest.mark.parametrize(("current", "allowed", "expected"), [
    (0, 10, "ok"), (7, 10, "ok"), (799, 1000, "ok"), (800, 1000, "warn"), (8, 10, "warn"), (999, 1000, "warn"),
    (1000, 1000, "full"), (12, 10, "full"), (0, 0, "ok"), (1, 0, "full"),
])
def test_levels_turn_amber_at_80_and_red_at_100_percent(current, allowed, expected):
    assert level(current, allowed) == expected


def test_advice_names_the_cheapest_tier_that_brings_usage_below_80_percent():
    assert advice("agents", 8, Tier.BASIC) == "Upgrade to Professional for 50 agents."
    assert advice("api_calls_per_day", 950, Tier.BASIC) == "Upgrade to Professional for 10,000 API calls a day."
    assert advice("tickets_per_month", 100, Tier.BASIC) == "Upgrade to Professional for 1,000 tickets a month."
    assert advice("storage_mb", 90 * MIB, Tier.BASIC) == "Upgrade to Professional for 1 GiB of storage."
    # 45 agents would be 90% of Professional's 50: Enterprise is the tier that fits.
    assert fitting_tier("agents", 45, Tier.BASIC) is Tier.ENTERPRISE
    assert advice("agents", 45, Tier.PROFESSIONAL) == "Upgrade to Enterprise for 500 agents."


def test_when_no_tier_is_roomy_the_largest_that_holds_it_is_named_and_beyond_that_none():
    assert fitting_tier("agents", 450, Tier.PROFESSIONAL) is Tier.ENTERPRISE  # 90% of 500, but it holds
    assert fitting_tier("agents", 501, Tier.PROFESSIONAL) is None
    assert fitting_tier("agents", 450, Tier.ENTERPRISE) is None
    assert advice("agents", 450, Tier.ENTERPRISE).startswith("No larger tier holds more agents")


def quotas(tier: str, **current: int) -> dict:
    allowed = {"basic": {"agents": 10, "tickets_per_month": 100, "storage_mb": 100 * MIB, "api_calls_per_day": 1000}}[tier]
    return {"subscription_tier": tier, "quotas": [
        {"limit": name, "current": current.get(name, 0), "allowed": cap, "unit": "bytes" if name == "storage_mb" else "count",
         "period": None} for name, cap in allowed.items()]}


def test_gauges_follow_the_display_order_and_advise_only_when_amber_or_red():
    gs = gauges(quotas("basic", agents=8, api_calls_per_day=1000, storage_mb=5 * MIB))
    assert [g.limit for g in gs] == ["api_calls_per_day", "agents", "tickets_per_month", "storage_mb"]
    by = {g.limit: g for g in gs}
    assert (by["api_calls_per_day"].level, by["agents"].level, by["storage_mb"].level) == ("full", "warn", "ok")
    assert by["agents"].advice == "Upgrade to Professional for 50 agents." and by["storage_mb"].advice is None
    assert by["storage_mb"].shown(by["storage_mb"].current) == "5 MiB" and by["storage_mb"].pct == 5.0
    assert by["api_calls_per_day"].fraction == 1.0


def test_fullest_ranks_tenants_by_their_fullest_limit():
    ranked = fullest({
        "a": gauges(quotas("basic", agents=3)),
        "b": gauges(quotas("basic", api_calls_per_day=990)),
        "c": gauges(quotas("basic", tickets_per_month=85, agents=8)),
    }, n=2)
    assert [(t, g.limit) for t, g in ranked] == [("b", "api_calls_per_day"), ("c", "tickets_per_month")]
