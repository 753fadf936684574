"""The modelyard event contract: one pydantic v2 model per event type and version.

JSON Schemas in ``schemas/`` are generated from these classes (``make schemas``).
"""

from .base import DERIVED_ID_NAMESPACE, Event, Model, QueryEvent, derived_id, new_id, utcnow
from .deadletter import DeadLetter
from .domain import (
    CASCADE_THRESHOLDS,
    TIER_LIMITS,
    ChatMessage,
    ComplexityLevel,
    Industry,
    ModelClass,
    RoutingPreference,
    SelfConsistency,
    Tier,
    TierLimits,
    smallest_tier_allowing,
)
from .queries import (
    Answer,
    CascadeStep,
    OutcomeStatus,
    QueryEscalated,
    QueryOutcome,
    QueryRequest,
    QueryRouted,
    QuerySubmitted,
    RejectCode,
    RouteContext,
    RoutingDecision,
    ShadowCompared,
    ShadowOf,
    ShadowPlan,
    finished_outcome,
    outcome_id,
    shadow_sampled,
)
from .router_models import RouterModelPublished
from .security import PLATFORM_TENANT, AuditOutcome, AuditRecorded, KeyRevoked, RevocationReason
from .tenants import AgentSnapshot, AlertMetric, RoutingPolicy, TenantAlert, TenantBudget, TenantSnapshot, TenantStatus
from .usage import MeteringUsage, UsageCounters, UsageRecorded

#: Every event class of the contract, by its versioned type.
EVENT_TYPES: dict[str, type[Model]] = {
    cls.TYPE: cls
    for cls in (
        QuerySubmitted,
        QueryRouted,
        QueryEscalated,
        QueryOutcome,
        UsageRecorded,
        MeteringUsage,
        TenantSnapshot,
        AgentSnapshot,
        TenantAlert,
        DeadLetter,
        KeyRevoked,
        AuditRecorded,
        RouterModelPublished,
        ShadowCompared,
    )
}

__all__ = [
    "CASCADE_THRESHOLDS",
    "DERIVED_ID_NAMESPACE",
    "EVENT_TYPES",
    "TIER_LIMITS",
    "AgentSnapshot",
    "AlertMetric",
    "AuditOutcome",
    "AuditRecorded",
    "Answer",
    "CascadeStep",
    "ChatMessage",
    "ComplexityLevel",
    "DeadLetter",
    "Event",
    "Industry",
    "KeyRevoked",
    "MeteringUsage",
    "Model",
    "ModelClass",
    "OutcomeStatus",
    "PLATFORM_TENANT",
    "QueryEscalated",
    "QueryEvent",
    "QueryOutcome",
    "QueryRequest",
    "QueryRouted",
    "QuerySubmitted",
    "RejectCode",
    "RevocationReason",
    "RouteContext",
    "RouterModelPublished",
    "RoutingDecision",
    "ShadowCompared",
    "ShadowOf",
    "ShadowPlan",
    "RoutingPolicy",
    "RoutingPreference",
    "SelfConsistency",
    "TenantAlert",
    "TenantBudget",
    "TenantSnapshot",
    "TenantStatus",
    "Tier",
    "TierLimits",
    "UsageCounters",
    "UsageRecorded",
    "derived_id",
    "finished_outcome",
    "new_id",
    "outcome_id",
    "shadow_sampled",
    "smallest_tier_allowing",
    "utcnow",
]
