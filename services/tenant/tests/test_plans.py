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


def test_a_new_tenant_s_cascade_threshold_is_its_preference_s():
    from modelyard_events import CASCADE_THRESHOLDS, RoutingPreference
    from modelyard_tenant.plans import policy_for

    for preference in RoutingPreference:
        policy = policy_for(preference)
        assert policy.preference is preference and policy.cascade_threshold == CASCADE_THRESHOLDS[preference]
    assert CASCADE_THRESHOLDS[RoutingPreference.COST] < CASCADE_THRESHOLDS[RoutingPreference.BALANCED] == 0.6
    assert CASCADE_THRESHOLDS[RoutingPreference.BALANCED] < CASCADE_THRESHOLDS[RoutingPreference.QUALITY]


def test_the_threshold_follows_the_preference_unless_the_tenant_set_its_own():
    from modelyard_tenant.plans import patched_policy

    following = {"preference": "balanced", "cascade_threshold": 0.6}
    assert patched_policy(following, {"preference": "quality"})["cascade_threshold"] == 0.7
    assert patched_policy(following, {"preference": "cost", "cascade_threshold": 0.65})["cascade_threshold"] == 0.65
    own = {"preference": "balanced", "cascade_threshold": 0.65}
    assert patched_policy(own, {"preference": "quality"})["cascade_threshold"] == 0.65
    assert patched_policy(own, {"cascade_threshold": None})["cascade_threshold"] == 0.6  # back to the preference's
    assert patched_policy(own, {"max_class": "llm"}) == {**own, "max_class": "llm"}
