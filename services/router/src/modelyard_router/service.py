"""Router service: composition root and the two handlers (submitted queries, escalations)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
from dataclasses import dataclass, field

from faststream import FastStream
from pymongo import AsyncMongoClient

from modelyard_core import metrics, ratelimit
from modelyard_core.app import stream_app
from modelyard_core.bus import Bus, Delivery, Outgoing, TransientError
from modelyard_core.pricing import PricingTable, load_pricing
from modelyard_core.store import make_mongo
from modelyard_core.views import CompactedTopicView
from modelyard_events import (
    DERIVED_ID_NAMESPACE,
    TIER_LIMITS,
    ComplexityLevel,
    ModelClass,
    OutcomeStatus,
    QueryEscalated,
    QueryOutcome,
    QueryRequest,
    QueryRouted,
    QuerySubmitted,
    RejectCode,
    RoutingDecision,
    SelfConsistency,
    TenantSnapshot,
    TenantStatus,
    Tier,
    derived_id,
    finished_outcome,
    outcome_id,
)

from .admission import ADMITTED, AdmissionStore, PartitionDay, Verdict, utc_day
from .admission_state import RateCheck, TenantCount
from .decision import decide, model_for, next_class_for_escalation, shadow_plan
from .learning_service import learned_models
from .mongo import MongoAdmissionLog
from .published import ModelRegistry
from .settings import RouterSettings

log = logging.getLogger(__name__)

_REQUEST_FIELDS = tuple(QueryRequest.model_fields)
_ID_NAMESPACE = DERIVED_ID_NAMESPACE.bytes


def routed_event_id(query_id: str, attempt: int) -> str:
    return derived_id(query_id, "routed", str(attempt))


def first_routed_event_id(query_id: str) -> str:
    """``routed_event_id(query_id, 1)``, computed without the ``uuid`` module's overhead (one per query:
    it shows in the router's profile). A unit test holds it equal to ``derived_id``."""
    digest = bytearray(hashlib.sha1(_ID_NAMESPACE + f"{query_id}/routed/1".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def request_of(q: QuerySubmitted) -> QueryRequest:
    """The request part of a submitted query (cheaper than ``q.request()``, which dumps and re-parses)."""
    return QueryRequest(**{f: getattr(q, f) for f in _REQUEST_FIELDS})


def upgrade_for(tier: Tier, needed: int) -> Tier | None:
    """The cheapest tier above ``tier`` that allows ``needed`` API calls a day."""
    tiers = list(Tier)
    for better in tiers[tiers.index(tier) + 1:]:
        if TIER_LIMITS[better].api_calls_per_day >= needed:
            return better
    return None


def quota_refusal(tenant: TenantSnapshot, day: str, count: int, limit: int) -> Verdict:
    """Name the limit and the tier that would fit today's traffic (``count`` admissions so far)."""
    better = upgrade_for(tenant.tier, max(count, limit) + 1)
    if better is not None:
        hint = f"; the {better.value} tier allows {TIER_LIMITS[better].api_calls_per_day:,} calls per day"
    else:
        hint = "; no higher tier allows more: ask for a custom limit"
    return Verdict(
        RejectCode.QUOTA,
        f"daily API call limit of {limit:,} ({tenant.tier.value} tier) reached for {day} (UTC){hint}",
    )


def rate_refusal(tenant: TenantSnapshot, rate: ratelimit.TierRate, decision: ratelimit.RateDecision) -> Verdict:
    """Name the limit (the reason is the same for every refusal of it, so refused runs stay short) and
    the wait (``retry_after_s``, carried on the outcome)."""
    per_minute = rate.requests_per_minute if decision.limit == "requests" else rate.tokens_per_minute
    return Verdict(RejectCode.RATE_LIMITED, f"rate limit of {per_minute:,} {decision.limit} per minute "
                   f"({tenant.tier.value} tier) exceeded", retry_after_s=round(decision.retry_after_s, 3))


_REJECTED = metrics.OUTCOMES.labels("router", "rejected")
_ONE_UP = {c: c.next_up() for c in ModelClass}


@functools.cache
def _decisions_counter(model_class: ModelClass, complexity: ComplexityLevel):
    return metrics.ROUTING_DECISIONS.labels(model_class.value, complexity.value)


def pinned(request: QueryRequest, decision: RoutingDecision) -> str | None:
    """What the caller pinned, if the decision honours a pin: a pinned query is never escalated."""
    if request.requested_model is not None and decision.model == request.requested_model:
        return f"model {request.requested_model}"
    if request.requested_class is not None:
        return f"class {request.requested_class.value}"
    return None


@dataclass
class Router:
    settings: RouterSettings
    bus: Bus
    tenants: CompactedTopicView[TenantSnapshot]
    admission: AdmissionStore
    pricing: PricingTable
    models: ModelRegistry = field(default_factory=lambda: ModelRegistry(None))  # none: the keyword analysis decides

    async def _see_tenants(self, tenant_ids: set[str]) -> None:
        """A tenant created a moment ago may not be in the view yet: catch up before calling it unknown."""
        if all(self.tenants.get(t) is not None for t in tenant_ids):
            return
        if not await self.tenants.sync(timeout_s=self.settings.tenant_sync_timeout_s):
            # Not knowing is not "unknown": redeliver the batch rather than reject or finish wrongly.
            raise TransientError("tenant view has not caught up with the snapshots topic")

    # -- queries.submitted ---------------------------------------------------------------------------

    async def on_submitted(self, deliveries: list[Delivery[QuerySubmitted]]) -> None:
        await self._see_tenants({d.event.tenant_id for d in deliveries})
        days = [utc_day(d.event.time) for d in deliveries]
        # One view lookup per record, kept for the whole batch: the view may change at any await.
        tenants = [self.tenants.get(d.event.tenant_id) for d in deliveries]
        docs = await self._documents(deliveries, tenants, days)
        if self._may_refuse(deliveries, tenants, days, docs) and await self.tenants.sync(
            timeout_s=self.settings.tenant_sync_timeout_s
        ):
            # A refusal is final for the caller: decide it on the newest snapshot (an upgrade or a
            # reactivation published a moment ago counts).
            tenants = [self.tenants.get(d.event.tenant_id) for d in deliveries]
            docs = await self._documents(deliveries, tenants, days)
        try:
            verdicts = [
                self._verdict(d, tenant, docs.get((d.record.partition, day)))
                for d, tenant, day in zip(deliveries, tenants, days)
            ]
        except BaseException:
            self.admission.forget(docs.values())  # counted in memory, not stored: read them again
            raise
        # The counts are written while the admitted queries are classified; both must be done
        # before anything is published (a redelivered batch then replays the same verdicts).
        saving = asyncio.create_task(self.admission.save(docs.values()))
        try:
            outgoing = []
            for i, (d, tenant, verdict) in enumerate(zip(deliveries, tenants, verdicts)):
                outgoing.append(self._route(d, tenant) if verdict.admitted else self._reject(d, verdict))
                if i % 256 == 255:
                    await asyncio.sleep(0)  # let the store write progress (and the consumer heartbeat)
        finally:
            await saving
        await self.bus.publish(outgoing)

    async def _documents(self, deliveries: list[Delivery[QuerySubmitted]], tenants: list[TenantSnapshot | None],
                         days: list[str]) -> dict[tuple[int, str], PartitionDay]:
        """The admission documents of the batch's known tenants, by (partition, day)."""
        wanted: dict[tuple[int, str], set[str]] = {}
        for d, tenant, day in zip(deliveries, tenants, days):
            if tenant is not None:
                wanted.setdefault((d.record.partition, day), set()).add(tenant.tenant_id)
        return await self.admission.load(wanted)

    @staticmethod
    def _may_refuse(deliveries: list[Delivery[QuerySubmitted]], tenants: list[TenantSnapshot | None],
                    days: list[str], docs: dict[tuple[int, str], PartitionDay]) -> bool:
        """Whether some record of the batch could be refused for its tenant's status or quota."""
        arriving: dict[tuple[int, str, str], int] = {}
        for d, tenant, day in zip(deliveries, tenants, days):
            if tenant is None:
                continue
            if tenant.status is TenantStatus.SUSPENDED:
                return True
            key = (d.record.partition, day, tenant.tenant_id)
            arriving[key] = n = arriving.get(key, 0) + 1
            if docs[key[0], day].count(tenant.tenant_id) + n > tenant.limits.api_calls_per_day:
                return True
        return False

    def _verdict(self, d: Delivery[QuerySubmitted], tenant: TenantSnapshot | None, doc: PartitionDay | None) -> Verdict:
        q = d.event
        if tenant is None or doc is None:
            # Not recorded: an unknown tenant has no count, and a flood of made-up tenant ids must
            # not grow the documents.
            return Verdict(RejectCode.UNKNOWN_TENANT, f"unknown tenant {q.tenant_id!r}")
        suspended = (
            Verdict(RejectCode.SUSPENDED, f"tenant {q.tenant_id!r} is suspended")
            if tenant.status is TenantStatus.SUSPENDED else None
        )
        return doc.admit(
            q.tenant_id, d.record.offset, tenant.limits.api_calls_per_day, refusal=suspended,
            quota_refusal=lambda count, limit: quota_refusal(tenant, doc.day, count, limit),
            rate=self._rate_check(q, tenant) if self.settings.rate_limits.enabled else None,
        )

    def _rate_check(self, q: QuerySubmitted, tenant: TenantSnapshot) -> RateCheck:
        """The tenant's rates, decided at the query's own submission time (see ``modelyard_core.ratelimit``)."""
        limits = self.settings.rate_limits
        rate = limits.rate(tenant.tier)

        def check(entry: TenantCount) -> Verdict:
            tokens = limits.tokens_of([q.text, *(m.content for m in q.history)])
            at_us = int(q.time.timestamp() * 1_000_000)
            decision = ratelimit.decide(entry.tat_requests, entry.tat_tokens, at_us, tokens, rate)
            if decision.allowed:
                entry.tat_requests, entry.tat_tokens = decision.tat_requests_us, decision.tat_tokens_us
                return ADMITTED
            return rate_refusal(tenant, rate, decision)

        return check

    def _route(self, d: Delivery[QuerySubmitted], tenant: TenantSnapshot) -> Outgoing:
        q = d.event
        request = request_of(q)
        decision = decide(request, tenant, self.pricing, learned=self.models.for_tenant(tenant))
        _decisions_counter(decision.model_class, decision.complexity).inc()
        routed = QueryRouted(
            event_id=first_routed_event_id(q.query_id),
            tenant_id=q.tenant_id,
            query_id=q.query_id,
            request=request,
            decision=decision,
            submitted_at=q.time,
            cascade_threshold=tenant.policy.cascade_threshold,
            can_escalate=self._next_class(request, decision, tenant, attempts=1) is not None,
            shadow=shadow_plan(q.query_id, request, decision, tenant, self.pricing),
            self_consistency=self_consistency_for(decision, tenant),
        )
        return Outgoing(self.bus.topics.routed(decision.model_class.pool), routed, cause=d)

    def _reject(self, d: Delivery[QuerySubmitted], verdict: Verdict) -> Outgoing:
        q = d.event
        _REJECTED.inc()
        outcome = QueryOutcome(
            event_id=outcome_id(q.query_id),
            tenant_id=q.tenant_id,
            query_id=q.query_id,
            status=OutcomeStatus.REJECTED,
            submitted_at=q.time,
            reject_code=verdict.code,
            reason=verdict.reason,
            # A replayed rate refusal no longer knows its wait: at most a minute, the window of every rate.
            retry_after_s=(verdict.retry_after_s if verdict.retry_after_s is not None else 60.0)
            if verdict.code is RejectCode.RATE_LIMITED else None,
            metadata=q.metadata,
        )
        return Outgoing(self.bus.topics.name("outcomes"), outcome, cause=d)

    # -- escalation policy ---------------------------------------------------------------------------

    def _next_class(self, request: QueryRequest, decision: RoutingDecision, tenant: TenantSnapshot | None,
                    *, attempts: int) -> ModelClass | None:
        return self._escalation(request, decision, tenant, attempts=attempts)[0]

    def _escalation(self, request: QueryRequest, decision: RoutingDecision, tenant: TenantSnapshot | None,
                    *, attempts: int) -> tuple[ModelClass | None, str]:
        """Where a query that made ``attempts`` model calls goes next: (class, "") or (None, why not)."""
        if tenant is None:
            return None, "tenant no longer exists"
        if tenant.status is TenantStatus.SUSPENDED:
            return None, "tenant is suspended"
        if (pin := pinned(request, decision)) is not None:
            return None, f"the request pinned {pin}"
        current = decision.model_class
        up = _ONE_UP[current]
        if up is None:
            return None, f"{current.value} is the highest model class"
        target = next_class_for_escalation(current, tenant)
        if target is None:
            return None, f"{up.value} is above the tenant's highest allowed class"
        if attempts >= self.settings.max_attempts:
            return None, f"{attempts} model calls made, the most a query may make"
        return target, ""

    # -- queries.escalations -------------------------------------------------------------------------

    async def on_escalated(self, deliveries: list[Delivery[QueryEscalated]]) -> None:
        await self._see_tenants({d.event.tenant_id for d in deliveries})
        await self.bus.publish([self._escalate(d) for d in deliveries])

    def _escalate(self, d: Delivery[QueryEscalated]) -> Outgoing:
        e = d.event
        tenant = self.tenants.get(e.tenant_id)
        attempts = len(e.cascade)
        target, why = self._escalation(e.request, e.decision, tenant, attempts=attempts)
        if target is None:
            return Outgoing(self.bus.topics.name("outcomes"), final_outcome(e, why), cause=d)
        current = e.decision.model_class
        metrics.CASCADES.labels(current.value, target.value).inc()
        decision = RoutingDecision(
            complexity=e.decision.complexity,
            score=e.decision.score,
            model_class=target,
            model=model_for(target, tenant, self.pricing),
            reasons=[*e.decision.reasons,
                     f"escalated {current.value}→{target.value}: {'; '.join(e.reasons) or 'low confidence'}"],
            router_model=e.decision.router_model,
        )
        attempt = attempts + 1
        routed = QueryRouted(
            event_id=routed_event_id(e.query_id, attempt),
            tenant_id=e.tenant_id,
            query_id=e.query_id,
            request=e.request,
            decision=decision,
            submitted_at=e.submitted_at,
            cascade=e.cascade,
            cascade_threshold=e.cascade_threshold,
            can_escalate=self._next_class(e.request, decision, tenant, attempts=attempt) is not None,
            best_answer=e.best_answer,
        )
        return Outgoing(self.bus.topics.routed(target.pool), routed, cause=d)


def self_consistency_for(decision: RoutingDecision, tenant: TenantSnapshot) -> SelfConsistency | None:
    """The tenant's self-consistency policy, on a route to the small model when it asks for several samples
    (the SLM worker applies it to reasoning questions only)."""
    policy = tenant.policy.self_consistency
    return policy if decision.model_class is ModelClass.SLM and policy.samples > 1 else None


def final_outcome(e: QueryEscalated, why: str) -> QueryOutcome:
    """An escalation that may not go higher ends with the best answer so far, or fails if there is none."""
    if e.best_answer is None:
        errors = "; ".join(f"{s.model}: {s.error}" for s in e.cascade if s.error) or "no answer"
        metrics.OUTCOMES.labels("router", "failed").inc()
        return finished_outcome(e, e.cascade, answer=None, reason=f"no model call answered ({errors}); {why}")
    metrics.OUTCOMES.labels("router", "completed").inc()
    return finished_outcome(e, e.cascade, answer=e.best_answer, reason=f"not escalated further ({why}); best answer kept")


def create_app(settings: RouterSettings | None = None) -> FastStream:
    """Composition root of the router: the only place that builds clients and wires handlers."""
    settings = settings or RouterSettings()
    bus = Bus(settings, "router")
    topics = settings.topics
    tenants = CompactedTopicView(settings, topics.name("tenant_snapshots"), TenantSnapshot, name="router-tenants")
    mongo: AsyncMongoClient = make_mongo(settings.mongo, app_name="modelyard-router")
    admission = AdmissionStore(MongoAdmissionLog(mongo[settings.admission_database_name][settings.admission_collection]),
                               topics.name("submitted"))
    models, model_view, learner = learned_models(settings, bus, mongo, learn=settings.router.learn)
    router = Router(settings, bus, tenants, admission, load_pricing(settings.pricing_file), models)
    bus.consume(topics.name("submitted"), QuerySubmitted, router.on_submitted, group_id=settings.group_id,
                max_records=settings.submitted_batch_records, linger_ms=settings.submitted_linger_ms,
                description="Admit (quota), classify and route submitted queries.")
    bus.consume(topics.name("escalations"), QueryEscalated, router.on_escalated, group_id=settings.group_id,
                description="Send an escalated query one model class up, or finish it with its best answer.")

    pruning: list[asyncio.Task] = []

    async def prune_forever() -> None:
        while True:
            try:
                await admission.prune(keep_days=settings.admission_keep_days)
            except Exception:  # noqa: BLE001 - housekeeping; the next round tries again
                log.warning("pruning admission counters failed", exc_info=True)
            await asyncio.sleep(settings.admission_prune_interval_s)

    async def start_pruning() -> None:
        pruning.append(asyncio.create_task(prune_forever(), name="router-prune-admission"))

    async def stop_pruning() -> None:
        for task in pruning:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    startup = [admission.ensure_indexes, tenants.start]
    shutdown = [stop_pruning, admission.close, tenants.stop]
    if model_view is not None:
        startup += [model_view.start, models.settled]  # serve the published model from the first query on
        shutdown.append(model_view.stop)
    if learner is not None:
        startup.append(learner.start)
        shutdown.insert(0, learner.stop)
    return stream_app(settings, bus, startup=[*startup, start_pruning], shutdown=shutdown, mongo=mongo)
