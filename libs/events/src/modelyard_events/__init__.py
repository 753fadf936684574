"""The modelyard event contract: one pydantic v2 model per event type and version.

JSON Schemas in ``schemas/`` are generated from these classes (``make schemas``).
"""

from .base import DERIVED_ID_NAMESPACE, Event, Model, QueryEvent, derived_id, new_id, utcnow
from .billing import MeterEventExported, MonthClosed
from .changes import Change, TenantChanged
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
from .assembly import Assembly, ChoiceBuilder
from .generation import Choice, ChoiceDelta, Generation, ModelError, QueryChunk, StreamTo
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
from .tenants import (
    AgentSnapshot,
    AlertMetric,
    RoutingPolicy,
    TenantAlert,
    TenantBudget,
    TenantEndpoint,
    TenantSnapshot,
    TenantStatus,
)
from .usage import MeteringUsage, UsageCounters, UsageRecorded
from .webhooks import WebhookParked

#: Every event class of the contract, by its versioned type.
EVENT_TYPES: dict[str, type[Model]] = {
    cls.TYPE: cls
    for cls in (
        QuerySubmitted,
        QueryRouted,
        QueryEscalated,
        QueryOutcome,
        QueryChunk,
        UsageRecorded,
        MeteringUsage,
        TenantSnapshot,
        AgentSnapshot,
        TenantAlert,
        DeadLetter,
        MonthClosed,
        MeterEventExported,
        TenantChanged,
        WebhookParked,
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
    "Assembly",
    "CascadeStep",
    "Change",
    "ChatMessage",
    "Choice",
    "ChoiceBuilder",
    "ChoiceDelta",
    "ComplexityLevel",
    "DeadLetter",
    "Event",
    "Generation",
    "Industry",
    "MeterEventExported",
    "KeyRevoked",
    "MeteringUsage",
    "Model",
    "ModelClass",
    "ModelError",
    "MonthClosed",
    "OutcomeStatus",
    "PLATFORM_TENANT",
    "QueryChunk",
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
    "StreamTo",
    "TenantAlert",
    "TenantBudget",
    "TenantChanged",
    "TenantEndpoint",
    "TenantSnapshot",
    "TenantStatus",
    "Tier",
    "TierLimits",
    "UsageCounters",
    "UsageRecorded",
    "WebhookParked",
    "derived_id",
    "finished_outcome",
    "new_id",
    "outcome_id",
    "shadow_sampled",
    "smallest_tier_allowing",
    "utcnow",
]
