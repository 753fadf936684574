"""Tenant policy through ``decide``: level to class, presets, overrides, tiers, pins, the escalation ladder."""

from __future__ import annotations

import pytest
from modelyard_core.pricing import load_pricing
from modelyard_events import (
    TIER_LIMITS,
    ComplexityLevel,
    Generation,
    Industry,
    ModelClass,
    QueryRequest,
    RoutingPolicy,
    RoutingPreference,
    TenantSnapshot,
    Tier,
)
from modelyard_router.decision import decide, model_for, next_class_for_escalation
from modelyard_router.policy import load_policy_config, load_policy_spec

SLM, LLM, LLM_PLUS = ModelClass.SLM, ModelClass.LLM, ModelClass.LLM_PLUS

#: Premises of the borderline tests, checked in the tests themselves before they rely on them.
JUST_BELOW_LLM = "How do I configure the VPN client and install the certificate on my laptop?"  # moderate, 3.5
JUST_ABOVE_LLM = "Investigate the search page"  # complex, 4.0


@pytest.fixture(scope="module")
def pricing():
    return load_pricing()


def tenant(
    industry: Industry = Industry.OTHER,
    tier: Tier = Tier.PROFESSIONAL,
    policy: RoutingPolicy | None = None,
    tenant_id: str = "t1",
) -> TenantSnapshot:
    return TenantSnapshot(
        tenant_id=tenant_id,
        version=1,
        name=tenant_id,
        tier=tier,
        industry=industry,
        limits=TIER_LIMITS[tier],
        policy=policy if policy is not None else RoutingPolicy(),
    )


def route(text: str, t: TenantSnapshot | None, pricing, **request):
    return decide(QueryRequest(text=text, **request), t, pricing)


# --- level -> class, the seed's examples ----------------------------------------------------------


def test_seed_examples_route_to_the_seed_classes(pricing):
    status = route("What is the status of ticket #123?", None, pricing)
    assert (status.complexity, status.model_class, status.model) == (ComplexityLevel.SIMPLE, SLM, "gpt-4o-mini")
    rca = route("Analyze the root cause of database outage and design recovery strategy", None, pricing)
    assert rca.complexity is ComplexityLevel.COMPLEX and rca.model_class is LLM and rca.model == "gpt-4o"
    dr = route("Design disaster recovery plan", None, pricing)
    assert dr.complexity is ComplexityLevel.CRITICAL and dr.model_class is LLM_PLUS and dr.model == "gpt-4-turbo"


def test_tools_offered_and_a_tool_conversation_count_as_factors(pricing):
    text = "What is the weather in Paris?"
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    plain = route(text, None, pricing)
    offered = route(text, None, pricing, generation=Generation(tools=[tool]))
    assert offered.score == pytest.approx(plain.score + 0.5) and "tools offered +0.50" in offered.reasons
    # A conversation carried as OpenAI messages counts its earlier turns as history, like history does.
    turns = [{"role": "user", "content": text}, {"role": "assistant", "content": None, "tool_calls": []},
             {"role": "tool", "tool_call_id": "c1", "content": "12 C"}, {"role": "user", "content": text}]
    assert any(r.startswith("history 3 turns") for r in route(text, None, pricing, messages=turns).reasons)


def test_short_urgent_outage_goes_to_the_llm_pool_even_for_cost_preferring_tenants(pricing):
    for t in (None, tenant(Industry.TECH), tenant(policy=RoutingPolicy(preference=RoutingPreference.COST))):
        d = route("all prod down. payments failing everywhere", t, pricing)
        assert d.model_class in (LLM, LLM_PLUS)
        assert d.model_class.pool == "llm"


def test_level_classes_come_from_the_data_file():
    spec = load_policy_spec()
    assert spec["version"]
    assert spec["level_classes"] == {"simple": "slm", "moderate": "slm", "complex": "llm", "critical": "llm_plus"}


def test_shipped_tier_models_are_priced(pricing):
    for tier in load_policy_config().tiers.values():
        assert all(pricing.knows(m) for m in tier.class_models.values())


# --- presets and overrides ------------------------------------------------------------------------


def test_borderline_below_goes_up_for_quality_presets_only(pricing):
    balanced = route(JUST_BELOW_LLM, None, pricing)
    assert balanced.complexity is ComplexityLevel.MODERATE and 3.5 <= balanced.score < 4.0  # the premise
    assert balanced.model_class is SLM
    for industry in (Industry.FINANCE, Industry.HEALTHCARE):
        d = route(JUST_BELOW_LLM, tenant(industry), pricing)
        assert d.model_class is LLM, industry
        assert d.complexity is ComplexityLevel.MODERATE  # the analysis is unchanged; the class moved
        assert any("prefers quality" in r and f"{industry.value} preset" in r for r in d.reasons)
    assert route(JUST_BELOW_LLM, tenant(Industry.TECH), pricing).model_class is SLM
    assert route(JUST_BELOW_LLM, tenant(Industry.OTHER), pricing).model_class is SLM


def test_borderline_above_goes_down_for_tech_only(pricing):
    balanced = route(JUST_ABOVE_LLM, None, pricing)
    assert balanced.complexity is ComplexityLevel.COMPLEX and 4.0 <= balanced.score < 4.5  # the premise
    assert balanced.model_class is LLM
    d = route(JUST_ABOVE_LLM, tenant(Industry.TECH), pricing)
    assert d.model_class is SLM and d.model == "gpt-4o-mini"
    assert any("prefers cost" in r for r in d.reasons)
    assert route(JUST_ABOVE_LLM, tenant(Industry.FINANCE), pricing).model_class is LLM


def test_clear_cases_are_not_moved_by_presets(pricing):
    for industry in Industry:
        assert route("What is the status of ticket #123?", tenant(industry), pricing).model_class is SLM
        assert route("Design disaster recovery plan", tenant(industry), pricing).model_class is LLM_PLUS


def test_borderline_at_the_llm_plus_boundary(pricing):
    config = load_policy_config()
    critical_at = next(b.score for b in config.boundaries(_thresholds()) if b.above is LLM_PLUS)
    # A complex score just below the llm_plus boundary: a security analyst asking for a deep analysis.
    text = "Investigate the root cause of the intermittent latency and recommend a fix"
    d = route(text, None, pricing, agent_type="security_analyst")
    assert critical_at - config.margin <= d.score < critical_at  # the premise
    assert d.model_class is LLM
    assert route(text, tenant(Industry.FINANCE), pricing, agent_type="security_analyst").model_class is LLM_PLUS


def _thresholds():
    from modelyard_router.complexity import load_complexity_model

    return load_complexity_model().thresholds


def test_explicit_tenant_preference_wins_over_the_industry_preset(pricing):
    finance_on_cost = tenant(Industry.FINANCE, policy=RoutingPolicy(preference=RoutingPreference.COST))
    assert route(JUST_BELOW_LLM, finance_on_cost, pricing).model_class is SLM
    assert route(JUST_ABOVE_LLM, finance_on_cost, pricing).model_class is SLM
    tech_on_quality = tenant(Industry.TECH, policy=RoutingPolicy(preference=RoutingPreference.QUALITY))
    assert route(JUST_BELOW_LLM, tech_on_quality, pricing).model_class is LLM
    # An explicitly stated "balanced" is an override too.
    finance_balanced = tenant(Industry.FINANCE, policy=RoutingPolicy(preference=RoutingPreference.BALANCED))
    assert route(JUST_BELOW_LLM, finance_balanced, pricing).model_class is SLM


def test_preference_survives_a_json_round_trip_of_the_snapshot(pricing):
    t = tenant(Industry.FINANCE, policy=RoutingPolicy(preference=RoutingPreference.COST))
    again = TenantSnapshot.model_validate_json(t.model_dump_json())
    assert route(JUST_ABOVE_LLM, again, pricing).model_class is SLM


def test_class_model_overrides_win_and_unpriced_overrides_are_skipped(pricing):
    t = tenant(policy=RoutingPolicy(class_models={LLM: "gpt-4.1", SLM: "no-such-model"}))
    assert route(JUST_ABOVE_LLM, t, pricing).model == "gpt-4.1"
    assert route("What is the status of ticket #123?", t, pricing).model == "gpt-4o-mini"
    assert model_for(LLM, t, pricing) == "gpt-4.1"
    assert model_for(LLM_PLUS, t, pricing) == "gpt-4-turbo"
    assert model_for(LLM, None, pricing) == pricing.class_defaults[LLM]


def test_tier_defaults_come_from_data(pricing, monkeypatch):
    config = load_policy_config()
    monkeypatch.setitem(config.tiers[Tier.ENTERPRISE].class_models, SLM, "llama-3.1-8b-instruct")
    assert model_for(SLM, tenant(tier=Tier.ENTERPRISE), pricing) == "llama-3.1-8b-instruct"
    assert model_for(SLM, tenant(tier=Tier.PROFESSIONAL), pricing) == "gpt-4o-mini"


# --- ceilings, floors, pins -----------------------------------------------------------------------


def test_basic_tier_caps_at_llm(pricing):
    d = route("Design disaster recovery plan", tenant(tier=Tier.BASIC), pricing)
    assert d.complexity is ComplexityLevel.CRITICAL and d.model_class is LLM and d.model == "gpt-4o"
    assert any("capped at llm by tier basic" in r for r in d.reasons)


def test_tenant_max_class_lowers_but_never_raises_the_tier_ceiling(pricing):
    low = tenant(policy=RoutingPolicy(max_class=SLM))
    assert route("Design disaster recovery plan", low, pricing).model_class is SLM
    greedy_basic = tenant(tier=Tier.BASIC, policy=RoutingPolicy(max_class=LLM_PLUS))
    assert route("Design disaster recovery plan", greedy_basic, pricing).model_class is LLM


def test_min_class_raises_simple_queries(pricing):
    t = tenant(policy=RoutingPolicy(min_class=LLM))
    d = route("What is the status of ticket #123?", t, pricing)
    assert d.model_class is LLM and any("min_class" in r for r in d.reasons)


def test_pinned_class_is_honoured_within_the_ceiling(pricing):
    d = route("What is the status of ticket #123?", None, pricing, requested_class=LLM_PLUS)
    assert d.model_class is LLM_PLUS and d.model == "gpt-4-turbo"
    assert d.complexity is ComplexityLevel.SIMPLE
    assert route("Design disaster recovery plan", None, pricing, requested_class=SLM).model_class is SLM
    capped = route("What is the status of ticket #123?", tenant(tier=Tier.BASIC), pricing, requested_class=LLM_PLUS)
    assert capped.model_class is LLM


def test_pinned_model_is_honoured_when_configured(pricing):
    d = route("What is the status of ticket #123?", None, pricing, requested_model="gpt-4o")
    assert (d.model_class, d.model) == (LLM, "gpt-4o")
    custom = tenant(policy=RoutingPolicy(class_models={LLM: "gpt-4.1"}))
    d = route("What is the status of ticket #123?", custom, pricing, requested_model="gpt-4.1")
    assert (d.model_class, d.model) == (LLM, "gpt-4.1")


def test_unknown_pinned_model_is_ignored_with_a_reason(pricing):
    d = route("What is the status of ticket #123?", None, pricing, requested_model="my-own-model")
    assert (d.model_class, d.model) == (SLM, "gpt-4o-mini")
    assert any("not configured" in r for r in d.reasons)
    # ... and a pinned class still applies
    d = route("What is the status of ticket #123?", None, pricing, requested_model="nope", requested_class=LLM)
    assert d.model_class is LLM


def test_pinned_model_above_the_ceiling_is_replaced_by_the_ceilings_model(pricing):
    d = route("hello", tenant(tier=Tier.BASIC), pricing, requested_model="gpt-4-turbo")
    assert (d.model_class, d.model) == (LLM, "gpt-4o")


# --- escalation -----------------------------------------------------------------------------------


def test_escalation_ladder_without_tenant_policy():
    assert next_class_for_escalation(SLM, None) is LLM
    assert next_class_for_escalation(LLM, None) is LLM_PLUS
    assert next_class_for_escalation(LLM_PLUS, None) is None


@pytest.mark.parametrize(
    ("t", "ceiling"),
    [
        (None, LLM_PLUS),
        (tenant(tier=Tier.BASIC), LLM),
        (tenant(tier=Tier.ENTERPRISE), LLM_PLUS),
        (tenant(policy=RoutingPolicy(max_class=SLM)), SLM),
        (tenant(policy=RoutingPolicy(max_class=LLM)), LLM),
        (tenant(tier=Tier.BASIC, policy=RoutingPolicy(max_class=LLM_PLUS)), LLM),
    ],
)
def test_escalation_never_goes_beyond_llm_plus_or_the_ceiling(t, ceiling):
    order = list(ModelClass)
    for start in ModelClass:
        current, steps = start, 0
        while (up := next_class_for_escalation(current, t)) is not None:
            assert order.index(up) == order.index(current) + 1
            current, steps = up, steps + 1
            assert steps <= len(order)
        assert current is ceiling or order.index(start) > order.index(ceiling)


def test_policy_cache_follows_a_new_snapshot(pricing):
    first = tenant(Industry.FINANCE)
    assert route(JUST_BELOW_LLM, first, pricing).model_class is LLM
    second = first.model_copy(update={"version": 2, "policy": RoutingPolicy(preference=RoutingPreference.COST)})
    assert route(JUST_BELOW_LLM, second, pricing).model_class is SLM
    assert route(JUST_BELOW_LLM, first, pricing).model_class is LLM
