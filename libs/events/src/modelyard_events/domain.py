"""Enumerations and value objects shared by several events."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .base import Model


class ComplexityLevel(StrEnum):
    SIMPLE = "simple"
    MODERATE = "moderate"
    COMPLEX = "complex"
    CRITICAL = "critical"


class ModelClass(StrEnum):
    """Model classes in escalation order: a cascade only ever moves right."""

    SLM = "slm"
    LLM = "llm"
    LLM_PLUS = "llm_plus"

    def next_up(self) -> ModelClass | None:
        order = list(ModelClass)
        i = order.index(self)
        return order[i + 1] if i + 1 < len(order) else None

    @property
    def pool(self) -> str:
        """The inference pool (and topic) that serves this class: llm_plus runs on the LLM pool."""
        return "slm" if self is ModelClass.SLM else "llm"


class Tier(StrEnum):
    BASIC = "basic"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


class Industry(StrEnum):
    FINANCE = "finance"
    HEALTHCARE = "healthcare"
    TECH = "tech"
    OTHER = "other"


class RoutingPreference(StrEnum):
    QUALITY = "quality"
    BALANCED = "balanced"
    COST = "cost"


#: The cascade threshold (confidence below which an answer escalates) a routing preference implies, when a
#: tenant sets no threshold of its own. 0.6 is neutral; how the other two were chosen, with their measured
#: quality and cost on recorded GSM8K answers: docs/benchmarks.md (issue 17).
CASCADE_THRESHOLDS: dict[RoutingPreference, float] = {
    RoutingPreference.COST: 0.5,
    RoutingPreference.BALANCED: 0.6,
    RoutingPreference.QUALITY: 0.7,
}


class SelfConsistency(Model):
    """Ask the small model for several answers to a reasoning question and compare their final answers."""

    samples: int = Field(default=1, ge=1, le=8, description="k: completions asked for in one request (OpenAI n); 1 turns it off.")
    temperature: float = Field(default=0.7, ge=0, le=2, description="Sampling temperature of the k completions (0 makes them identical).")
    min_agreement: float = Field(default=0.5, ge=0, lt=1, description="The answer escalates unless more than this share of the k samples agree on its final answer.")


class ChatMessage(Model):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str = Field(max_length=32_000)


class TierLimits(Model):
    agents: int = Field(ge=0)
    tickets_per_month: int = Field(ge=0)
    storage_mb: int = Field(ge=0)
    api_calls_per_day: int = Field(ge=0)


#: The seed's tier limits. The tenant service sells them; the router and metering enforce them.
TIER_LIMITS: dict[Tier, TierLimits] = {
    Tier.BASIC: TierLimits(agents=10, tickets_per_month=100, storage_mb=100, api_calls_per_day=1_000),
    Tier.PROFESSIONAL: TierLimits(agents=50, tickets_per_month=1_000, storage_mb=1_024, api_calls_per_day=10_000),
    Tier.ENTERPRISE: TierLimits(agents=500, tickets_per_month=10_000, storage_mb=10_240, api_calls_per_day=100_000),
}


def smallest_tier_allowing(field: str, needed: int) -> Tier | None:
    """The cheapest tier whose limit ``field`` is at least ``needed`` (None if none is)."""
    for tier in Tier:
        if getattr(TIER_LIMITS[tier], field) >= needed:
            return tier
    return None
