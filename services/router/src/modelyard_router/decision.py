"""The routing decision: the one code path the router service and the offline tools share.

``decide`` analyses a query's complexity (``complexity.py``) and applies the tenant's policy
(``policy.py``): pinned class or model, borderline preference, floor and ceiling, concrete model.
With a learned router model (``learned.py``), the model chooses the class instead of the keyword
level and the borderline rule, at the threshold of the tenant's preference, and ``score`` is its
P(small model fails); pins, floor, ceiling and the concrete model apply as without one.
"""

from __future__ import annotations

from functools import lru_cache

from modelyard_core.pricing import PricingTable
from modelyard_events import ModelClass, QueryRequest, RoutingDecision, ShadowPlan, TenantSnapshot, shadow_sampled

from . import policy as _policy
from .complexity import ComplexityModel, load_complexity_model
from .learned import LearnedRouter
from .policy import PolicyConfig, load_policy_config


_validate_decision = RoutingDecision.__pydantic_validator__.validate_python


@lru_cache(maxsize=16)
def _boundaries(config: PolicyConfig, model: ComplexityModel) -> list[_policy.Boundary]:
    return config.boundaries(model.thresholds)


def decide(
    request: QueryRequest,
    tenant: TenantSnapshot | None,
    pricing: PricingTable,
    *,
    model: ComplexityModel | None = None,
    config: PolicyConfig | None = None,
    learned: LearnedRouter | None = None,
) -> RoutingDecision:
    """Route one query. ``tenant`` None means no tenant policy (balanced, every class allowed).

    ``model`` and ``config`` default to the shipped data files; tests pass their own. ``learned``: the
    learned router model, if one is configured (without one, the keyword analysis decides).
    """
    model = model or load_complexity_model()
    config = config or load_policy_config()
    history_turns = len(request.messages) - 1 if request.messages else len(request.history)
    analysis = model.analyze(
        request.text,
        user_role=request.user_role,
        history_turns=history_turns,
        agent_type=request.agent_type,
        offers_tools=request.generation is not None and request.generation.offers_tools,
    )
    policy = _policy.effective_policy(tenant, config)
    reasons = analysis.reasons  # a fresh list per analysis: ours to extend
    score = analysis.score
    learned_class: ModelClass | None = None
    if learned is not None:
        learned_class, score, learned_reasons = learned.route(
            analysis, request.text, request.user_role, request.agent_type, history_turns,
            tenant.tenant_id if tenant is not None else None, policy.preference, policy.preference_source)
        reasons += learned_reasons

    model_class: ModelClass | None = None
    pinned_model: str | None = None
    if request.requested_model is not None:
        model_class = _policy.class_of_model(request.requested_model, tenant, pricing, config)
        if model_class is None:
            reasons.append(f"requested model {request.requested_model!r} is not configured for this tenant: ignored")
        else:
            pinned_model = request.requested_model
            reasons.append(f"pinned model {pinned_model} ({model_class.value})")
    if model_class is None and request.requested_class is not None:
        model_class = request.requested_class
        reasons.append(f"pinned class {model_class.value}")
    if model_class is None and learned_class is not None:
        model_class = learned_class
    if model_class is None:
        model_class, why = _policy.class_for(
            analysis.level, analysis.score, policy, config, _boundaries(config, model), analysis.incident
        )
        if why:
            reasons.append(why)

    clamped, why, class_model = _policy.clamped_class_and_model(model_class, tenant, policy, pricing, config)
    if why:
        reasons.append(why)
        pinned_model = None  # the pinned model serves a class the tenant may not use
    chosen_model = pinned_model or class_model
    # The model's validator on a dict: what ``RoutingDecision(**fields)`` runs, without its Python ``__init__`` frame
    # and keyword packing (a third of the decision object's cost).
    return _validate_decision({
        "complexity": analysis.level,
        "score": score,
        "model_class": clamped,
        "model": chosen_model,
        "reasons": reasons,
        "router_model": learned.label if learned is not None else None,
    })


def next_class_for_escalation(current: ModelClass, tenant: TenantSnapshot | None) -> ModelClass | None:
    """The class an escalation goes to: one up, None at llm_plus or above the tenant's ceiling."""
    return _policy.next_class(current, _policy.effective_policy(tenant, load_policy_config()))


def model_for(model_class: ModelClass, tenant: TenantSnapshot | None, pricing: PricingTable) -> str:
    """The concrete model serving ``model_class`` for this tenant."""
    return _policy.model_for(model_class, tenant, pricing, load_policy_config())


def shadow_plan(query_id: str, request: QueryRequest, decision: RoutingDecision, tenant: TenantSnapshot | None,
                pricing: PricingTable) -> ShadowPlan | None:
    """Where a shadow copy of this query goes, if shadow evaluation samples it: routed to the small model, not
    pinned, within the tenant's ``shadow_share`` (by its id), and the tenant may use the large model."""
    if tenant is None or decision.model_class is not ModelClass.SLM or request.requested_class or request.requested_model:
        return None
    share = tenant.policy.shadow_share
    if not shadow_sampled(query_id, share) or next_class_for_escalation(ModelClass.SLM, tenant) is None:
        return None
    return ShadowPlan(share=share, model_class=ModelClass.LLM, model=model_for(ModelClass.LLM, tenant, pricing))
