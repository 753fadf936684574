"""What each tier sells and what each industry preset sets: the one place that says it.

Limits come from the event contract (``TIER_LIMITS``), which the router and metering enforce too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from modelyard_events import (
    CASCADE_THRESHOLDS,
    TIER_LIMITS,
    Industry,
    RoutingPolicy,
    RoutingPreference,
    Tier,
    TierLimits,
    smallest_tier_allowing,
)

MIB = 1024 * 1024


class SupportLevel(StrEnum):
    STANDARD = "standard"
    PRIORITY = "priority"
    ALWAYS_ON = "24x7"


class Feature(StrEnum):
    ADVANCED_ANALYTICS = "advanced_analytics"
    CUSTOM_MODELS = "custom_models"
    SSO = "sso"
    DEDICATED_INFRASTRUCTURE = "dedicated_infrastructure"


@dataclass(frozen=True)
class Plan:
    tier: Tier
    limits: TierLimits
    support_level: SupportLevel
    features: frozenset[Feature]


PLANS: dict[Tier, Plan] = {
    Tier.BASIC: Plan(Tier.BASIC, TIER_LIMITS[Tier.BASIC], SupportLevel.STANDARD, frozenset()),
    Tier.PROFESSIONAL: Plan(
        Tier.PROFESSIONAL, TIER_LIMITS[Tier.PROFESSIONAL], SupportLevel.PRIORITY, frozenset({Feature.ADVANCED_ANALYTICS})
    ),
    Tier.ENTERPRISE: Plan(Tier.ENTERPRISE, TIER_LIMITS[Tier.ENTERPRISE], SupportLevel.ALWAYS_ON, frozenset(Feature)),
}


@dataclass(frozen=True)
class IndustryPreset:
    routing_preference: RoutingPreference
    compliance: tuple[str, ...] = ()
    features: frozenset[Feature] = field(default_factory=frozenset)


PRESETS: dict[Industry, IndustryPreset] = {
    Industry.FINANCE: IndustryPreset(RoutingPreference.QUALITY, ("SOC2", "PCI-DSS")),
    Industry.HEALTHCARE: IndustryPreset(RoutingPreference.QUALITY, ("HIPAA",)),
    Industry.TECH: IndustryPreset(RoutingPreference.COST, (), frozenset({Feature.ADVANCED_ANALYTICS})),
    Industry.OTHER: IndustryPreset(RoutingPreference.BALANCED),
}


def policy_for(preference: RoutingPreference) -> RoutingPolicy:
    """A new tenant's routing policy: its preset's preference and the cascade threshold that preference implies."""
    return RoutingPolicy(preference=preference, cascade_threshold=CASCADE_THRESHOLDS[preference])


def patched_policy(stored: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A stored policy with a patch applied. The cascade threshold follows the preference: a new preference
    brings its threshold unless the patch sets one, or the tenant had set a threshold of its own (one that is
    not its old preference's); a ``null`` threshold goes back to the preference's."""
    merged = {**stored, **patch}
    preference = RoutingPreference(merged.get("preference", RoutingPreference.BALANCED))
    old_preference = RoutingPreference(stored.get("preference", RoutingPreference.BALANCED))
    if "cascade_threshold" in patch:
        if patch["cascade_threshold"] is None:
            merged["cascade_threshold"] = CASCADE_THRESHOLDS[preference]
    elif stored.get("cascade_threshold", CASCADE_THRESHOLDS[old_preference]) == CASCADE_THRESHOLDS[old_preference]:
        merged["cascade_threshold"] = CASCADE_THRESHOLDS[preference]
    return merged


def features_of(tier: Tier, industry: Industry) -> dict[str, bool | str]:
    """Effective features: the tier's, plus what the industry preset switches on."""
    on = PLANS[tier].features | PRESETS[industry].features
    return {"support_level": PLANS[tier].support_level.value, **{f.value: f in on for f in Feature}}


def smallest_tier_with(feature: Feature) -> Tier | None:
    return next((t for t in Tier if feature in PLANS[t].features), None)


# --------------------------------------------------------------------------------------------------
# Quota arithmetic (pure)

#: Limits the tenant service enforces itself (api_calls_per_day is the router's and metering's).
ENFORCED = ("agents", "tickets_per_month", "storage_mb")


@dataclass(frozen=True)
class ResourceUsage:
    agents: int
    tickets_this_month: int
    storage_bytes: int

    def amount(self, limit: str) -> int:
        return {"agents": self.agents, "tickets_per_month": self.tickets_this_month, "storage_mb": self.storage_bytes}[limit]


def capacity(tier: Tier, limit: str) -> int:
    """The tier's limit in the unit usage is counted in (bytes for storage)."""
    value = getattr(TIER_LIMITS[tier], limit)
    return value * MIB if limit == "storage_mb" else value


def tier_allowing(limit: str, needed: int) -> Tier | None:
    """The cheapest tier under which ``needed`` (in usage units) fits."""
    if limit == "storage_mb":
        needed = -(-needed // MIB)  # bytes -> whole MiB, rounded up
    return smallest_tier_allowing(limit, needed)


@dataclass(frozen=True)
class Excess:
    limit: str
    current: int
    allowed: int
    unit: str

    def as_dict(self) -> dict:
        return {"limit": self.limit, "current": self.current, "allowed": self.allowed, "unit": self.unit}


def excesses(usage: ResourceUsage, tier: Tier) -> list[Excess]:
    """Which of the tier's limits the usage is above (a downgrade or import to it must be refused)."""
    out = []
    for limit in ENFORCED:
        current, allowed = usage.amount(limit), capacity(tier, limit)
        if current > allowed:
            out.append(Excess(limit, current, allowed, "bytes" if limit == "storage_mb" else "count"))
    return out
