"""One example message per event type: written to ``schemas/examples/`` and validated in tests.

Values are fixed so the generated files only change when the contract does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from .base import Model
from .billing import MeterEventExported, MonthClosed
from .changes import Change, TenantChanged
from .deadletter import DeadLetter
from .domain import TIER_LIMITS, ChatMessage, ComplexityLevel, Industry, ModelClass, RoutingPreference, Tier
from .generation import ChoiceDelta, Generation, QueryChunk, StreamTo
from .queries import (
    Answer,
    CascadeStep,
    OutcomeStatus,
    QueryEscalated,
    QueryOutcome,
    QueryRequest,
    QueryRouted,
    QuerySubmitted,
    RouteContext,
    RoutingDecision,
    ShadowCompared,
)
from .router_models import RouterModelPublished
from .security import AuditOutcome, AuditRecorded, KeyRevoked, RevocationReason
from .tenants import AgentSnapshot, AlertMetric, RoutingPolicy, TenantAlert, TenantBudget, TenantSnapshot
from .usage import MeteringUsage, UsageCounters, UsageRecorded
from .webhooks import WebhookParked

T0 = datetime(2026, 11, 26, 9, 30, 0, tzinfo=UTC)
TENANT = "8f14e45f-ceea-4e7a-9d6f-3c59d3a1b2c4"
QUERY = "c9f0f895-fb98-4b9f-8a1e-2d7e1f6b4a33"


def examples() -> list[Model]:
    request = QueryRequest(
        text="Why do distributed locks in the scheduler sometimes expire early?",
        history=[ChatMessage(role="user", content="Our nightly jobs ran twice yesterday.")],
        user_role="engineer", agent_id="agent-incident-1", agent_type="incident_specialist",
        metadata={"ticket": "INC-4521"},
        generation=Generation(temperature=0.2, max_completion_tokens=400, seed=7, stop=["\n\nCustomer:"]),
        stream_to=StreamTo(partition=3, instance="ingress-5d8f7c6b9-x2x7q"),
    )
    decision = RoutingDecision(complexity=ComplexityLevel.MODERATE, score=3.0, model_class=ModelClass.SLM,
                               model="gpt-4o-mini", reasons=["keywords moderate: 'why' +1.00", "score 3.00 -> moderate"])
    slm_step = CascadeStep(model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.41,
                           reasons=["hedging: 'i'm not sure'"], input_tokens=42, output_tokens=96,
                           cost_usd=0.0000639, latency_ms=182.0)
    llm_step = CascadeStep(model_class=ModelClass.LLM, model="gpt-4o", confidence=0.93, reasons=[],
                           input_tokens=42, output_tokens=180, cost_usd=0.001905, latency_ms=640.0)
    slm_answer = Answer(text="I'm not sure, but the lease may be too short.", model_class=ModelClass.SLM,
                        model="gpt-4o-mini", confidence=0.41)
    common = dict(tenant_id=TENANT, query_id=QUERY, time=T0)
    counters = UsageCounters(calls=2, queries=1, cascade_steps=1, slm_calls=1, llm_calls=1, input_tokens=84,
                             output_tokens=276, cost_usd=0.0019689, llm_cost_usd=0.000825, latency_ms_sum=822.0,
                             latency_count=2)
    return [
        QuerySubmitted(event_id="0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", **common, **request.model_dump()),
        QueryRouted(event_id="1a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d", **common, request=request, decision=decision,
                    submitted_at=T0, cascade_threshold=0.6, can_escalate=True),
        QueryEscalated(event_id="2b3c4d5e-6f7a-4b1c-8d2e-3f4a5b6c7d8e", **common, request=request, decision=decision,
                       submitted_at=T0, cascade=[slm_step], cascade_threshold=0.6, best_answer=slm_answer,
                       reasons=["hedging: 'i'm not sure'"]),
        QueryOutcome(event_id="3c4d5e6f-7a8b-4c2d-9e3f-4a5b6c7d8e9f", **common, status=OutcomeStatus.COMPLETED,
                     submitted_at=T0, answer="Lease renewals run on the same thread as the job...",
                     model_class=ModelClass.LLM, model="gpt-4o", confidence=0.93, complexity=ComplexityLevel.MODERATE,
                     cascade=[slm_step.model_copy(update={"escalated": True}), llm_step], input_tokens=84,
                     output_tokens=276, cost_usd=0.0019689, metadata={"ticket": "INC-4521"},
                     route=RouteContext.of(request, decision)),
        ShadowCompared(event_id="d0e1f2a3-b4c5-4d6e-9f70-8a9b0c1d2e3f", **common, route=RouteContext.of(request, decision),
                       small_model="gpt-4o-mini", large_model="gpt-4o", agreed=False, method="similarity",
                       similarity=0.31, share=0.05),
        QueryChunk(event_id="0e1d2c3b-4a59-4867-8fa5-b4c3d2e1f0a9", **common, run="5f4e3d2c-1b0a-4987-8a6b-5c4d3e2f1a0b",
                   seq=0, model="gpt-4o", model_class=ModelClass.LLM,
                   deltas=[ChoiceDelta(index=0, content="Lease renewals run on the same thread")]),
        UsageRecorded(event_id="4d5e6f7a-8b9c-4d3e-8f4a-5b6c7d8e9fa0", **common, model="gpt-4o", model_class=ModelClass.LLM,
                      agent_id="agent-incident-1", input_tokens=42, output_tokens=180, cost_usd=0.001905,
                      llm_cost_usd=0.001905, latency_ms=640.0, cascade_step=True),
        MeteringUsage(event_id="5e6f7a8b-9cad-4e4f-9a5b-6c7d8e9fa0b1", tenant_id=TENANT, time=T0, day=date(2026, 11, 26),
                      delta=counters, totals=counters),
        TenantSnapshot(event_id="6f7a8b9c-adbe-4f5a-8b6c-7d8e9fa0b1c2", tenant_id=TENANT, time=T0, version=3,
                       name="Acme Financial", tier=Tier.PROFESSIONAL, industry=Industry.FINANCE,
                       limits=TIER_LIMITS[Tier.PROFESSIONAL],
                       policy=RoutingPolicy(preference=RoutingPreference.QUALITY, cascade_threshold=0.6),
                       budget=TenantBudget(monthly_cost_usd=500.0)),
        AgentSnapshot(event_id="7a8b9cad-becf-4a6b-9c7d-8e9fa0b1c2d3", tenant_id=TENANT, time=T0,
                      agent_id="agent-incident-1", name="Alex Thompson", agent_type="incident_specialist",
                      system_prompt="You are an incident specialist for Acme's platform team."),
        TenantAlert(event_id="8b9cadbe-cfd0-4b7c-8d8e-9fa0b1c2d3e4", tenant_id=TENANT, time=T0,
                    metric=AlertMetric.API_CALLS_PER_DAY, threshold_pct=80, period="2026-11-26", value=8000, limit=10000),
        DeadLetter(event_id="9cadbecf-d0e1-4c8d-9e9f-a0b1c2d3e4f5", time=T0, service="router",
                   source_topic="queries.submitted", partition=3, offset=1187, key=TENANT, error_type="schema",
                   error="not a valid QuerySubmitted: text: Field required",
                   value_base64="eyJ0ZW5hbnRfaWQiOiAiOGYxNGU0NWYifQ==", headers={"content-type": "application/json"}),
        RouterModelPublished(event_id="cfd0e1f2-a3b4-4fc0-8b1c-d2e3f4a5b6c7", tenant_id="_platform", time=T0,
                             name="default", version=1795685400000000,
                             model_id="0c33ddb20fed61d3d1f1a0a6b5c3e9f2b8a7d6c5e4f3a2b1c0d9e8f7a6b5c4d3",
                             label="default@0c33ddb20fed", source="operator", description="helpdesk model, 2026-11"),
        MonthClosed(event_id="0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", tenant_id=TENANT, time=T0, month="2026-10",
                    closed_at=T0, currency="usd", base_cents=45_000, overage_cents=1_250, total_cents=46_250),
        MeterEventExported(event_id="1c2d3e4f-5a6b-4c7d-9e8f-0a1b2c3d4e5f", tenant_id=TENANT, time=T0,
                           event_name="modelyard_tokens", identifier="my-1c2d3e4f-5a6b-4c7d-9e8f-0a1b2c3d4e5f",
                           timestamp=1793491199, stripe_customer_id="cus_NciAYcXfLnqBoz", value=24_166_020,
                           meter="tokens", month="2026-10", line="report"),
        TenantChanged(event_id="2d3e4f5a-6b7c-4d8e-8f9a-1b2c3d4e5f6a", tenant_id=TENANT, time=T0, change=Change.TIER_CHANGED,
                      version=4, from_tier=Tier.BASIC, to_tier=Tier.PROFESSIONAL),
        WebhookParked(event_id="3e4f5a6b-7c8d-4e9f-9a0b-2c3d4e5f6a7b", tenant_id=TENANT, time=T0,
                      endpoint_id="5b7d4e6f8a0b1c2d3e4f5a6b3f2a9c1e", delivery_id="5b7d4e6f8a0b1c2d3e4f5a6b3f2a9c1e|evt_8b9cadbe",
                      webhook_id="evt_8b9cadbe-cfd0-4b7c-8d8e-9fa0b1c2d3e4", webhook_type="quota.warning",
                      body='{"data":{"limit":10000,"metric":"api_calls_per_day","period":"2026-11-26","threshold_pct":80,'
                           '"value":8000},"id":"evt_8b9cadbe-cfd0-4b7c-8d8e-9fa0b1c2d3e4","tenant_id":"8f14e45f-ceea-4e7a-9d6f-'
                           '3c59d3a1b2c4","timestamp":"2026-11-26T09:30:00Z","type":"quota.warning"}',
                      attempts=18, first_attempt_at=T0, last_error="HTTP 503"),
        KeyRevoked(event_id="adbecfd0-e1f2-4d9e-8fa0-b1c2d3e4f5a6", tenant_id=TENANT, time=T0,
                   key_id="3f2a9c1e5b7d4e6f8a0b1c2d3e4f5a6b", revoked_at=T0, reason=RevocationReason.REVOKED),
        AuditRecorded(event_id="becfd0e1-f2a3-4eaf-9a0b-c1d2e3f4a5b6", tenant_id=TENANT, time=T0, service="tenant",
                      actor="7c1e5b3f2a9d4c6e8f0a1b2c3d4e5f6a", role="tenant_admin", action="api_key.revoke",
                      method="DELETE", target=f"/v1/tenants/{TENANT}/api-keys/3f2a9c1e5b7d4e6f8a0b1c2d3e4f5a6b",
                      request_id="d0e1f2a3-b4c5-4d6e-8f7a-9b0c1d2e3f4a", source_address="203.0.113.7",
                      outcome=AuditOutcome.SUCCESS, status_code=204),
    ]
