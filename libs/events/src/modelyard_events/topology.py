"""Which event travels on which topic, and which service sends or receives it.

This is the contract's map: the JSON Schemas and AsyncAPI documents in ``schemas/`` are generated from
it and from the event models, and so are the Kafka ACLs of every service's principal
(``modelyard_core.acls``): one map, so the documents and the permissions cannot drift apart. Topic keys
are the field names of ``modelyard_core.settings.Topics``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Model
from .billing import MeterEventExported, MonthClosed
from .changes import TenantChanged
from .deadletter import DeadLetter
from .generation import QueryChunk
from .queries import QueryEscalated, QueryOutcome, QueryRouted, QuerySubmitted, ShadowCompared
from .router_models import RouterModelPublished
from .security import AuditRecorded, KeyRevoked
from .tenants import AgentSnapshot, TenantAlert, TenantSnapshot
from .usage import MeteringUsage, UsageRecorded
from .webhooks import WebhookParked


@dataclass(frozen=True)
class Channel:
    topic: str  # default topic name (before any prefix)
    event: type[Model]
    key: str
    description: str
    compacted: bool = False


CHANNELS: dict[str, Channel] = {
    "submitted": Channel("queries.submitted", QuerySubmitted, "tenant_id",
                         "Queries from upstream systems (and the OpenAI-compatible ingress)."),
    "routed_slm": Channel("queries.routed.slm", QueryRouted, "tenant_id", "Queries the router sent to the SLM pool."),
    "routed_llm": Channel("queries.routed.llm", QueryRouted, "tenant_id",
                          "Queries the router sent to the LLM pool (classes llm and llm_plus)."),
    "escalations": Channel("queries.escalations", QueryEscalated, "tenant_id",
                           "Answers not confident enough, or backends that stayed down: the router sends them one class up."),
    "outcomes": Channel("queries.outcomes", QueryOutcome, "tenant_id",
                        "The one terminal event per query: completed, rejected or failed."),
    "shadows": Channel("queries.shadows", ShadowCompared, "tenant_id",
                       "Shadow evaluation: a sampled accepted small-model answer compared with the large model's "
                       "answer to the same query (the router's learner reads them)."),
    "streams": Channel("queries.streams", QueryChunk, "tenant_id (the partition is the one the query's stream_to names)",
                       "Tokens of final routes while the model generates them, in batches; short retention. Each "
                       "ingress instance reads one partition."),
    "usage": Channel("usage.recorded", UsageRecorded, "tenant_id", "One record per model call."),
    "metering": Channel("metering.usage", MeteringUsage, "tenant_id",
                        "Per tenant and day, after each metering flush: the delta and the new totals."),
    "tenant_snapshots": Channel("tenants.snapshots", TenantSnapshot, "tenant_id",
                                "Current state of each tenant; a null value (tombstone) when deleted.", compacted=True),
    "tenant_agents": Channel("tenants.agents", AgentSnapshot, "tenant_id/agent_id",
                             "Current state of each tenant agent; a tombstone when deleted.", compacted=True),
    "tenant_alerts": Channel("tenants.alerts", TenantAlert, "tenant_id", "Quota alerts at 80% and 100%."),
    "tenant_events": Channel("tenants.events", TenantChanged, "tenant_id",
                             "Tier changes, API keys created and revoked, tenants exported and deleted (for webhooks)."),
    "webhooks_parked": Channel("webhooks.parked", WebhookParked, "endpoint_id",
                               "Webhook deliveries that failed for the whole retry window; `modelyard webhooks replay` "
                               "sends them again."),
    "billing_statements": Channel("billing.statements", MonthClosed, "tenant_id",
                                  "A tenant's monthly report was closed (frozen); later usage becomes adjustment lines."),
    "meter_events": Channel("billing.meter_events", MeterEventExported, "identifier",
                            "Stripe Billing meter events of closed months, for a connector to forward; the identifier "
                            "is the idempotency key."),
    "revocations": Channel("tenants.revocations", KeyRevoked, "key_id",
                           "Revoked API keys: the JWTs minted from them are refused by every service that "
                           "accepts JWTs.", compacted=True),
    "audit": Channel("audit.events", AuditRecorded, "tenant_id",
                     "One record per mutating API call (success or failure): actor, action, target, outcome."),
    "router_models": Channel("router.models", RouterModelPublished, "name",
                             "Learned router models (stored in the router's database by id): every router replica "
                             "switches to the newest version of each name.", compacted=True),
    "deadletter": Channel("deadletter.<service>", DeadLetter, "original key",
                          "Messages a service could not process, with the reason and the original bytes."),
}

#: service → (channels it receives, channels it sends)
SERVICES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tenant": (("revocations",), ("tenant_snapshots", "tenant_agents", "revocations", "audit", "tenant_events",
                                  "billing_statements")),
    "router": (("submitted", "escalations", "tenant_snapshots", "outcomes", "shadows", "router_models"),
               ("routed_slm", "routed_llm", "outcomes", "router_models", "deadletter")),
    "inference": (("routed_slm", "routed_llm", "tenant_agents", "tenant_snapshots"),
                  ("outcomes", "escalations", "streams", "usage", "routed_llm", "shadows", "deadletter")),
    "metering": (("usage", "tenant_snapshots"), ("metering", "tenant_alerts", "deadletter")),
    "ingress": (("outcomes", "streams", "revocations"), ("submitted",)),
    # `modelyard billing close|export` (and the tenant API's close call) publish these.
    "billing": ((), ("billing_statements", "meter_events")),
    "webhooks": (("tenant_alerts", "tenant_events", "billing_statements"), ("webhooks_parked", "deadletter")),
}

#: service → the consumer groups it joins (defaults of the services' ``group_id`` settings; without a
#: topic prefix). Views and listeners read without a group.
CONSUMER_GROUPS: dict[str, tuple[str, ...]] = {
    "router": ("modelyard-router",),
    "inference": ("modelyard-inference-slm", "modelyard-inference-llm"),
    "metering": ("modelyard-metering",),
    "webhooks": ("modelyard-webhooks",),
}
