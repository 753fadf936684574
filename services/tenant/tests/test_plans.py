"""Tiers, presets and quota arithmetic (pure functions)."""

from __future__ import annotations

from modelyard_events import TIER_LIMITS, Industry, Tier
from modelyard_tenancy import Role
from modelyard_tenant.permissions import GRANTS, Action
from modelyard_tenant.plans import MIB, PLANS, PRESETS, ResourceUsage, capacity, excesses, features_of, tier_allowing


def test_plans_sell_the_contract_limits_and_grow_with_the_tier():
    assert all(PLANS[t].limits == TIER_LIMITS[t] for t in Tier)
    basic, pro, ent = (PLANS[t] for t in Tier)
    assert basic.features < pro.features < ent.features


def test_presets_by_industry():
    assert PRESETS[Industry.FINANCE].compliance == ("SOC2", "PCI-DSS")
    assert PRESETS[Industry.HEALTHCARE].compliance == ("HIPAA",)
    assert features_of(Tier.BASIC, Industry.TECH)["advanced_analytics"] is True
    assert features_of(Tier.BASIC, Industry.FINANCE)["advanced_analytics"] is False


def test_capacity_and_upgrade_suggestion_in_usage_units():
    assert capacity(Tier.BASIC, "storage_mb") == 100 * MIB
    assert capacity(Tier.PROFESSIONAL, "agents") == 50
    assert tier_allowing("storage_mb", 100 * MIB) is Tier.BASIC
    assert tier_allowing("storage_mb", 100 * MIB + 1) is Tier.PROFESSIONAL  # one byte over rounds up to a whole MiB
    assert tier_allowing("agents", 501) is None
    assert tier_allowing("tickets_per_month", 1_001) is Tier.ENTERPRISE


def test_excesses_list_every_limit_above_the_tier():
    usage = ResourceUsage(agents=11, tickets_this_month=100, storage_bytes=100 * MIB + 1)
    over = excesses(usage, Tier.BASIC)
    assert [(e.limit, e.current, e.allowed) for e in over] == [("agents", 11, 10), ("storage_mb", 100 * MIB + 1, 100 * MIB)]
    assert excesses(usage, Tier.PROFESSIONAL) == []


def test_roles_grant_what_the_design_says():
    assert GRANTS[Role.PLATFORM_ADMIN] == frozenset(Action)
    assert GRANTS[Role.MEMBER] == {Action.READ}
    assert Action.ADMINISTER not in GRANTS[Role.TENANT_ADMIN]
    assert Action.WRITE_CONFIG not in GRANTS[Role.SERVICE] and Action.WRITE_WORK in GRANTS[Role.SERVICE]
