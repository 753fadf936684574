"""Router service: composition root and the two handlers (submitted queries, escalations)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from faststream import FastStream
from pymongo import AsyncMongoClient

from modelyard_core import metrics
from modelyard_core.app import stream_app
from modelyard_core.bus import Bus, Delivery, Outgoing
from modelyard_core.pricing import PricingTable, load_pricing
from modelyard_core.store import database, make_mongo
from modelyard_core.views import CompactedTopicView
from modelyard_events import (
    TIER_LIMITS,
    CascadeStep,
    OutcomeStatus,
    QueryEscalated,
    QueryOutcome,
    QueryRouted,
    QuerySubmitted,
    RejectCode,
    RoutingDecision,
    TenantSnapshot,
    TenantStatus,
    derived_id,
    smallest_tier_allowing,
)

from .admission import AdmissionStore, Counter
from .decision import decide, model_for, next_class_for_escalation
from .settings import RouterSettings

log = logging.getLogger(__name__)


def routed_event_id(query_id: str, attempt: int) -> str:
    return derived_id(query_id, "routed", str(attempt))


def outcome_event_id(query_id: str) -> str:
    return derived_id(query_id, "outcome")


@dataclass
class Router:
    settings: RouterSettings
    bus: Bus
    tenants: CompactedTopicView[TenantSnapshot]
    admission: AdmissionStore
    pricing: PricingTable

    # -- queries.submitted ---------------------------------------------------------------------------

    async def on_submitted(self, deliveries: list[Delivery[QuerySubmitted]]) -> None:
        if any(self.tenants.get(d.event.tenant_id) is None for d in deliveries):
            # A tenant created a moment ago may not be in the view yet: catch up before saying "unknown".
            await self.tenants.sync(timeout_s=self.settings.tenant_sync_timeout_s)

        keys = {(d.event.tenant_id, d.event.time.date().isoformat()) for d in deliveries}
        counters = await self.admission.load(keys)
        outgoing: list[Outgoing] = []
        for d in deliveries:
            q = d.event
            tenant = self.tenants.get(q.tenant_id)
            counter = counters[AdmissionStore.key(q.tenant_id, q.time.date().isoformat())]
            outgoing.append(self._admit_and_route(d, tenant, counter))
        await self.admission.save(counters)
        await self.bus.publish(outgoing)

    def _admit_and_route(self, d: Delivery[QuerySubmitted], tenant: TenantSnapshot | None, counter: Counter) -> Outgoing:
        q = d.event
        if tenant is None:
            return self._reject(d, RejectCode.UNKNOWN_TENANT, f"unknown tenant {q.tenant_id!r}")
        if tenant.status is TenantStatus.SUSPENDED:
            return self._reject(d, RejectCode.SUSPENDED, f"tenant {q.tenant_id!r} is suspended")
        limit = tenant.limits.api_calls_per_day
        if not counter.admit(d.record.partition, d.record.offset, limit):
            better = smallest_tier_allowing("api_calls_per_day", limit + 1)
            hint = f"; the {better.value} tier allows {TIER_LIMITS[better].api_calls_per_day:,} per day" if better else ""
            return self._reject(
                d, RejectCode.QUOTA,
                f"daily API call limit of {limit:,} for the {tenant.tier.value} tier reached on {counter.day}{hint}",
            )
        decision = decide(q.request(), tenant, self.pricing)
        metrics.ROUTING_DECISIONS.labels(decision.model_class.value, decision.complexity.value).inc()
        routed = QueryRouted(
            event_id=routed_event_id(q.query_id, 1),
            tenant_id=q.tenant_id,
            query_id=q.query_id,
            request=q.request(),
            decision=decision,
            submitted_at=q.time,
            cascade_threshold=tenant.policy.cascade_threshold,
            can_escalate=next_class_for_escalation(decision.model_class, tenant) is not None,
        )
        return Outgoing(self.bus.topics.routed(decision.model_class.pool), routed, cause=d)

    def _reject(self, d: Delivery[QuerySubmitted], code: RejectCode, reason: str) -> Outgoing:
        q = d.event
        metrics.OUTCOMES.labels("router", "rejected").inc()
        outcome = QueryOutcome(
            event_id=outcome_event_id(q.query_id),
            tenant_id=q.tenant_id,
            query_id=q.query_id,
            status=OutcomeStatus.REJECTED,
            submitted_at=q.time,
            reject_code=code,
            reason=reason,
            metadata=q.metadata,
        )
        return Outgoing(self.bus.topics.name("outcomes"), outcome, cause=d)

    # -- queries.escalations -------------------------------------------------------------------------

    async def on_escalated(self, deliveries: list[Delivery[QueryEscalated]]) -> None:
        await self.bus.publish([self._escalate(d) for d in deliveries])

    def _escalate(self, d: Delivery[QueryEscalated]) -> Outgoing:
        e = d.event
        tenant = self.tenants.get(e.tenant_id)
        current = e.decision.model_class
        target = next_class_for_escalation(current, tenant) if tenant is not None else None
        if target is not None and len(e.cascade) < self.settings.max_attempts:
            metrics.CASCADES.labels(current.value, target.value).inc()
            decision = RoutingDecision(
                complexity=e.decision.complexity,
                score=e.decision.score,
                model_class=target,
                model=model_for(target, tenant, self.pricing),
                reasons=[*e.decision.reasons, f"escalated {current.value}→{target.value}: {'; '.join(e.reasons) or 'low confidence'}"],
            )
            attempt = len(e.cascade) + 1
            routed = QueryRouted(
                event_id=routed_event_id(e.query_id, attempt),
                tenant_id=e.tenant_id,
                query_id=e.query_id,
                request=e.request,
                decision=decision,
                submitted_at=e.submitted_at,
                cascade=e.cascade,
                cascade_threshold=e.cascade_threshold,
                can_escalate=(
                    attempt < self.settings.max_attempts and next_class_for_escalation(target, tenant) is not None
                ),
                best_answer=e.best_answer,
            )
            return Outgoing(self.bus.topics.routed(target.pool), routed, cause=d)
        return Outgoing(self.bus.topics.name("outcomes"), final_outcome(e, tenant is None), cause=d)


def final_outcome(e: QueryEscalated, tenant_gone: bool) -> QueryOutcome:
    """An escalation that cannot go higher ends with the best answer so far, or fails if there is none."""
    steps: list[CascadeStep] = e.cascade
    totals = dict(
        input_tokens=sum(s.input_tokens for s in steps),
        output_tokens=sum(s.output_tokens for s in steps),
        cost_usd=sum(s.cost_usd for s in steps),
    )
    common = dict(
        event_id=outcome_event_id(e.query_id), tenant_id=e.tenant_id, query_id=e.query_id,
        submitted_at=e.submitted_at, complexity=e.decision.complexity, cascade=steps,
        metadata=e.request.metadata, **totals,
    )
    if e.best_answer is None:
        errors = "; ".join(f"{s.model}: {s.error}" for s in steps if s.error) or "no answer"
        metrics.OUTCOMES.labels("router", "failed").inc()
        return QueryOutcome(status=OutcomeStatus.FAILED, reason=f"every model call failed ({errors})", **common)
    best = e.best_answer
    why = "tenant no longer exists; " if tenant_gone else ""
    metrics.OUTCOMES.labels("router", "completed").inc()
    return QueryOutcome(
        status=OutcomeStatus.COMPLETED,
        answer=best.text,
        model_class=best.model_class,
        model=best.model,
        confidence=best.confidence,
        reason=f"{why}no higher model class available; best answer kept",
        **common,
    )


def create_app(settings: RouterSettings | None = None) -> FastStream:
    """Composition root of the router: the only place that builds clients and wires handlers."""
    settings = settings or RouterSettings()
    bus = Bus(settings, "router")
    topics = settings.topics
    tenants = CompactedTopicView(settings, topics.name("tenant_snapshots"), TenantSnapshot, name="router-tenants")
    mongo: AsyncMongoClient = make_mongo(settings.mongo, app_name="modelyard-router")
    admission = AdmissionStore(database(mongo, settings.mongo)["admission_counters"])
    router = Router(settings, bus, tenants, admission, load_pricing(settings.pricing_file))
    bus.consume(topics.name("submitted"), QuerySubmitted, router.on_submitted, group_id=settings.group_id,
                description="Admit (quota), classify and route submitted queries.")
    bus.consume(topics.name("escalations"), QueryEscalated, router.on_escalated, group_id=settings.group_id,
                description="Send an escalated query one model class up, or finish it with its best answer.")

    return stream_app(settings, bus, startup=[tenants.start], shutdown=[tenants.stop], mongo=mongo)
