"""Tenant state that other services need, published by the tenant service."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from .base import ID_MAX, Event, Model
from .domain import Industry, ModelClass, RoutingPreference, SelfConsistency, Tier, TierLimits


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class RoutingPolicy(Model):
    """How the router treats one tenant's queries (industry preset plus explicit overrides)."""

    preference: RoutingPreference = RoutingPreference.BALANCED
    cascade_threshold: float = Field(default=0.6, ge=0, le=1, description="Confidence below which an answer escalates; "
                                     "the tenant service sets it from the preference (CASCADE_THRESHOLDS) unless the tenant sets its own.")
    class_models: dict[ModelClass, str] = Field(default_factory=dict, description="Concrete model per class, overriding the tier default.")
    min_class: ModelClass | None = Field(default=None, description="Never route below this class.")
    max_class: ModelClass | None = Field(default=None, description="Never route or escalate above this class.")
    router_model: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$",
                                     description="A learned router model published under this name (`modelyard router "
                                     "publish-model --name`) decides this tenant's queries; unset or not published: "
                                     "the default model.")
    shadow_share: float = Field(default=0.0, ge=0, le=0.2, description="Share of this tenant's accepted small-model "
                                "answers also sent to the large model, without delaying the caller, to compare the two "
                                "(shadow evaluation; 0.01-0.05 is typical; 0 turns it off). Shadow calls are metered "
                                "apart and not billed.")
    self_consistency: SelfConsistency = Field(default_factory=SelfConsistency, description="k answers from the small "
                                              "model for reasoning questions, compared by their final answers (samples 1: off).")


class TenantBudget(Model):
    monthly_cost_usd: float | None = Field(default=None, ge=0)
    monthly_tokens: int | None = Field(default=None, ge=0)


class TenantEndpoint(Model):
    """A tenant's own OpenAI-compatible endpoint for one model class (bring your own model, enterprise).

    The API key travels sealed with the platform's master key (``modelyard_core.secrets``): only the
    inference workers, which hold the key, can open it. Calls to it are priced with the tenant's prices
    and metered as tenant-paid.
    """

    endpoint_id: str = Field(max_length=ID_MAX)
    model_class: ModelClass
    base_url: str = Field(max_length=2048)
    model: str = Field(max_length=128, description="The model name the endpoint serves.")
    sealed_api_key: str = Field(max_length=4096, description="The API key, encrypted with the master key.")
    input_usd_per_m: float = Field(ge=0, description="The tenant's price per million input tokens.")
    output_usd_per_m: float = Field(ge=0, description="The tenant's price per million output tokens.")


class TenantSnapshot(Event):
    """The tenant's current state on the compacted ``tenants.snapshots`` topic (key: tenant_id).

    A deleted tenant is a tombstone (null value) under its key. ``version`` grows with every change so
    a consumer can ignore a stale snapshot.
    """

    TYPE: ClassVar[str] = "modelyard.tenant.snapshot.v1"
    type: Literal["modelyard.tenant.snapshot.v1"] = "modelyard.tenant.snapshot.v1"

    version: int = Field(ge=0)
    name: str = Field(max_length=200)
    tier: Tier
    industry: Industry
    status: TenantStatus = TenantStatus.ACTIVE
    limits: TierLimits
    policy: RoutingPolicy = Field(default_factory=RoutingPolicy)
    budget: TenantBudget = Field(default_factory=TenantBudget)
    endpoints: list[TenantEndpoint] = Field(default_factory=list, max_length=len(ModelClass),
                                            description="The tenant's own model endpoints, at most one per class.")


class AgentSnapshot(Event):
    """A tenant agent on the compacted ``tenants.agents`` topic (key: tenant_id/agent_id)."""

    TYPE: ClassVar[str] = "modelyard.tenant.agent.v1"
    type: Literal["modelyard.tenant.agent.v1"] = "modelyard.tenant.agent.v1"

    agent_id: str = Field(max_length=ID_MAX)
    name: str = Field(max_length=200)
    agent_type: str = Field(max_length=64)
    system_prompt: str = Field(default="", max_length=16_000)
    use_model_router: bool = True


class AlertMetric(StrEnum):
    API_CALLS_PER_DAY = "api_calls_per_day"
    MONTHLY_COST_USD = "monthly_cost_usd"
    MONTHLY_TOKENS = "monthly_tokens"


class TenantAlert(Event):
    """Metering → ``tenants.alerts`` when usage crosses 80% or 100% of a limit, once per period."""

    TYPE: ClassVar[str] = "modelyard.tenant.alert.v1"
    type: Literal["modelyard.tenant.alert.v1"] = "modelyard.tenant.alert.v1"

    metric: AlertMetric
    threshold_pct: int = Field(description="80 or 100.")
    period: str = Field(description="Day (YYYY-MM-DD) or month (YYYY-MM) the limit applies to.")
    value: float
    limit: float
