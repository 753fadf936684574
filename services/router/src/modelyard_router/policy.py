"""Tenant routing policy: which model class a complexity level gets, and which concrete model serves it.

Layers, most specific first:
- the request may pin a class or a model (honoured within the tenant's floor and ceiling);
- the tenant's ``RoutingPolicy`` (preference, ``class_models``, ``min_class``, ``max_class``);
- the industry preset, only where the tenant's policy does not set a preference itself
  (finance and healthcare prefer quality, tech prefers cost: ``data/policy.json``);
- the tier defaults (highest class the tier may use, concrete models per class);
- the pricing table's class defaults.

Borderline: a score within ``borderline_margin`` points of a *class* boundary (the score threshold
at which the level's class changes: slm|llm at the complex threshold, llm|llm_plus at the critical
one). A quality preference moves a score just below a boundary up one class; a cost preference
moves a score at or just above it down one class, except an incident (a failure with a
business-wide scope: it must reach the LLM). The simple|moderate boundary changes no class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from modelyard_core.pricing import PricingTable
from modelyard_events import ComplexityLevel, Industry, ModelClass, RoutingPreference, Tier
from modelyard_events.tenants import TenantSnapshot

#: Position of each class in escalation order (slm < llm < llm_plus).
RANK: dict[ModelClass, int] = {c: i for i, c in enumerate(ModelClass)}
_ORDER = list(ModelClass)
#: ``ModelClass.next_up`` per class (computed once: iterating an enum per call shows in the router's profile).
_ONE_UP: dict[ModelClass, ModelClass | None] = {c: c.next_up() for c in ModelClass}


@dataclass(frozen=True, slots=True)
class TierDefaults:
    max_class: ModelClass
    class_models: dict[ModelClass, str]


@dataclass(frozen=True, slots=True)
class Boundary:
    """The score at which the class changes from ``below`` to ``above``."""

    score: float
    below: ModelClass
    above: ModelClass


class PolicyConfig:
    def __init__(self, spec: dict) -> None:
        self.version: str = spec["version"]
        self.level_classes = {ComplexityLevel(k): ModelClass(v) for k, v in spec["level_classes"].items()}
        if set(self.level_classes) != set(ComplexityLevel):
            raise ValueError(f"policy {self.version}: level_classes must name every level")
        self.margin = float(spec["borderline_margin"])
        self.presets = {Industry(k): RoutingPreference(v) for k, v in spec["industry_presets"].items()}
        self.tiers = {
            Tier(k): TierDefaults(
                max_class=ModelClass(v["max_class"]),
                class_models={ModelClass(c): m for c, m in v.get("class_models", {}).items()},
            )
            for k, v in spec["tiers"].items()
        }
        if set(self.tiers) != set(Tier):
            raise ValueError(f"policy {self.version}: tiers must name every tier")

    def boundaries(self, thresholds: dict[ComplexityLevel, float]) -> list[Boundary]:
        """Class boundaries implied by the level thresholds and ``level_classes``."""
        levels = list(ComplexityLevel)
        found = []
        for lower, upper in zip(levels, levels[1:]):
            below, above = self.level_classes[lower], self.level_classes[upper]
            if below != above:
                found.append(Boundary(thresholds[upper], below, above))
        return found


def load_policy_spec(path: str | Path | None = None) -> dict:
    if path:
        return json.loads(Path(path).read_text())
    return json.loads(resources.files("modelyard_router").joinpath("data/policy.json").read_text())


@cache
def load_policy_config(path: str | None = None) -> PolicyConfig:
    return PolicyConfig(load_policy_spec(path))


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """A tenant's policy with every layer resolved, and where each value came from (for reasons)."""

    preference: RoutingPreference
    preference_source: str
    min_class: ModelClass
    max_class: ModelClass
    max_source: str


NO_TENANT = EffectivePolicy(RoutingPreference.BALANCED, "no tenant policy", ModelClass.SLM, _ORDER[-1], "no tenant policy")


def preset_for(industry: Industry, config: PolicyConfig) -> RoutingPreference:
    return config.presets.get(industry, RoutingPreference.BALANCED)


class ByIdentity:
    """Values derived from objects that never change once built (a frozen tenant snapshot, the policy config, the
    pricing table), keyed by the objects' ids: the router keeps the same objects for every query of a tenant until
    a new snapshot replaces them. Each entry holds its objects, so while it lives no other object can have their
    ids. Bounded: emptied when full."""

    __slots__ = ("_entries", "_max")

    def __init__(self, max_entries: int = 4096) -> None:
        self._entries: dict[tuple, tuple[tuple, object]] = {}
        self._max = max_entries

    def get(self, key: tuple):
        hit = self._entries.get(key)
        return None if hit is None else hit[1]

    def put(self, key: tuple, objects: tuple, value):
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (objects, value)
        return value


_RESOLVED = ByIdentity()  # effective policies, by (snapshot, config)
_CLAMPED = ByIdentity()  # a class clamped and its concrete model, by (snapshot, pricing, config, class)


def effective_policy(tenant: TenantSnapshot | None, config: PolicyConfig) -> EffectivePolicy:
    if tenant is None:
        return NO_TENANT
    key = (id(tenant), id(config))
    resolved = _RESOLVED.get(key)
    if resolved is None:
        resolved = _RESOLVED.put(key, (tenant, config), _resolve(tenant, config))
    return resolved


def _resolve(tenant: TenantSnapshot, config: PolicyConfig) -> EffectivePolicy:
    policy = tenant.policy
    # A preference the snapshot states is the tenant's (the tenant service resolves presets and
    # overrides when it writes one); the industry preset fills in only where the snapshot is silent.
    if "preference" in policy.model_fields_set:
        preference, preference_source = policy.preference, "tenant policy"
    else:
        preference, preference_source = preset_for(tenant.industry, config), f"{tenant.industry.value} preset"
    tier = config.tiers[tenant.tier]
    max_class, max_source = tier.max_class, f"tier {tenant.tier.value}"
    # The tier's ceiling is what was sold: a tenant's own max_class can only lower it.
    if policy.max_class is not None and RANK[policy.max_class] < RANK[max_class]:
        max_class, max_source = policy.max_class, "tenant max_class"
    min_class = policy.min_class or ModelClass.SLM
    if RANK[min_class] > RANK[max_class]:
        min_class = max_class
    return EffectivePolicy(preference, preference_source, min_class, max_class, max_source)


def clamped_class_and_model(model_class: ModelClass, tenant: TenantSnapshot | None, policy: EffectivePolicy,
                            pricing: PricingTable, config: PolicyConfig) -> tuple[ModelClass, str | None, str]:
    """(the class within the tenant's floor and ceiling, why it moved or None, the concrete model serving it)."""
    key = (id(tenant), id(pricing), id(config), model_class)
    found = _CLAMPED.get(key)
    if found is None:
        clamped, why = clamp_class(model_class, policy)
        found = _CLAMPED.put(key, (tenant, pricing, config), (clamped, why, model_for(clamped, tenant, pricing, config)))
    return found


def class_for(
    level: ComplexityLevel,
    score: float,
    policy: EffectivePolicy,
    config: PolicyConfig,
    boundaries: list[Boundary],
    incident: bool = False,
) -> tuple[ModelClass, str | None]:
    """The class for a level, moved one class by the preference when the score is borderline.

    An incident (a failure with a business-wide scope) is never moved down by a cost preference.
    """
    base = config.level_classes[level]
    margin = config.margin
    if policy.preference is RoutingPreference.QUALITY:
        for b in boundaries:
            if b.below == base and b.score - margin <= score < b.score:
                return b.above, (
                    f"borderline: score {score:.2f} within {margin:g} below the {b.above.value} boundary "
                    f"{b.score:g}; {policy.preference_source} prefers quality -> {b.above.value}"
                )
    elif policy.preference is RoutingPreference.COST:
        for b in boundaries:
            if b.above == base and b.score <= score < b.score + margin:
                if incident:
                    return base, f"borderline, but an incident is not moved down by {policy.preference_source}"
                return b.below, (
                    f"borderline: score {score:.2f} within {margin:g} above the {b.above.value} boundary "
                    f"{b.score:g}; {policy.preference_source} prefers cost -> {b.below.value}"
                )
    return base, None


def clamp_class(model_class: ModelClass, policy: EffectivePolicy) -> tuple[ModelClass, str | None]:
    if RANK[model_class] > RANK[policy.max_class]:
        return policy.max_class, f"capped at {policy.max_class.value} by {policy.max_source}"
    if RANK[model_class] < RANK[policy.min_class]:
        return policy.min_class, f"raised to {policy.min_class.value} by tenant min_class"
    return model_class, None


def model_for(model_class: ModelClass, tenant: TenantSnapshot | None, pricing: PricingTable, config: PolicyConfig) -> str:
    """Tenant override, else tier default, else the pricing table's class default.

    A model the pricing table does not price is skipped: its calls could not be metered.
    """
    if tenant is not None:
        override = tenant.policy.class_models.get(model_class)
        if override and pricing.knows(override):
            return override
        tier_model = config.tiers[tenant.tier].class_models.get(model_class)
        if tier_model and pricing.knows(tier_model):
            return tier_model
    return pricing.class_defaults[model_class]


def class_of_model(model: str, tenant: TenantSnapshot | None, pricing: PricingTable, config: PolicyConfig) -> ModelClass | None:
    """The class a pinned model serves for this tenant, None when no layer configures it."""
    for model_class in ModelClass:
        if model_for(model_class, tenant, pricing, config) == model:
            return model_class
    for model_class in ModelClass:
        tier_model = config.tiers[tenant.tier].class_models.get(model_class) if tenant is not None else None
        if model in (tier_model, pricing.class_defaults.get(model_class)):
            return model_class
    return None


def next_class(current: ModelClass, policy: EffectivePolicy) -> ModelClass | None:
    """One class up, None at the top of the ladder or above the tenant's ceiling."""
    up = _ONE_UP[current]
    if up is None or RANK[up] > RANK[policy.max_class]:
        return None
    return up
