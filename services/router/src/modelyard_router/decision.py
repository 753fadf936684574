"""The routing decision: the one code path the router service and the offline tools share.

``decide`` analyses a query's complexity (``complexity.py``) and applies the tenant's policy
(``policy.py``): pinned class or model, borderline preference, floor and ceiling, concrete model.
"""

from __future__ import annotations

from functools import lru_cache

from modelyard_core.pricing import PricingTable
from modelyard_events import ModelClass, QueryRequest, RoutingDecision, TenantSnapshot

from . import policy as _policy
from .complexity import ComplexityModel, load_complexity_model
from .policy import PolicyConfig, load_policy_config


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
) -> RoutingDecision:
    """Route one query. ``tenant`` None means no tenant policy (balanced, every class allowed).

    ``model`` and ``config`` default to the shipped data files; tests pass their own.
    """
    model = model or load_complexity_model()
    config = config or load_policy_config()
    analysis = model.analyze(
        request.text,
        user_role=request.user_role,
        history_turns=len(request.messages) - 1 if request.messages else len(request.history),
        agent_type=request.agent_type,
        offers_tools=request.generation is not None and request.generation.offers_tools,
    )
    policy = _policy.effective_policy(tenant, config)
    reasons = analysis.reasons  # a fresh list per analysis: ours to extend

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
    if model_class is None:
        model_class, why = _policy.class_for(
            analysis.level, analysis.score, policy, config, _boundaries(config, model), analysis.incident
        )
        if why:
            reasons.append(why)

    clamped, why = _policy.clamp_class(model_class, policy)
    if why:
        reasons.append(why)
        pinned_model = None  # the pinned model serves a class the tenant may not use
    chosen_model = pinned_model or _policy.model_for(clamped, tenant, pricing, config)
    return RoutingDecision(
        complexity=analysis.level,
        score=analysis.score,
        model_class=clamped,
        model=chosen_model,
        reasons=reasons,
    )


def next_class_for_escalation(current: ModelClass, tenant: TenantSnapshot | None) -> ModelClass | None:
    """The class an escalation goes to: one up, None at llm_plus or above the tenant's ceiling."""
    return _policy.next_class(current, _policy.effective_policy(tenant, load_policy_config()))


def model_for(model_class: ModelClass, tenant: TenantSnapshot | None, pricing: PricingTable) -> str:
    """The concrete model serving ``model_class`` for this tenant."""
    return _policy.model_for(model_class, tenant, pricing, load_policy_config())
