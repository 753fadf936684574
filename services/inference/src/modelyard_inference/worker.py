"""The inference worker: answer routed queries, judge the answer, meter the call, finish or escalate."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from modelyard_core import metrics
from modelyard_core.bus import Bus, Delivery, Outgoing
from modelyard_core.pricing import PricingTable
from modelyard_core.views import CompactedTopicView
from modelyard_events import (
    AgentSnapshot,
    Answer,
    CascadeStep,
    OutcomeStatus,
    QueryEscalated,
    QueryOutcome,
    QueryRouted,
    UsageRecorded,
    derived_id,
)

from .backend import Backend, BackendUnavailable, Completion
from .confidence import score, should_escalate
from .settings import InferenceSettings

log = logging.getLogger(__name__)


def call_event_id(query_id: str, attempt: int) -> str:
    # One id per (query, cascade step): a redelivered step is metered once, however often it runs.
    return derived_id(query_id, "call", str(attempt))


@dataclass
class Worker:
    settings: InferenceSettings
    bus: Bus
    backend: Backend
    pricing: PricingTable
    agents: CompactedTopicView[AgentSnapshot] | None = None

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.settings.concurrency)

    async def on_routed(self, deliveries: list[Delivery[QueryRouted]]) -> None:
        # The batch's offsets are committed only when every query in it is finished, so running them
        # concurrently never commits past unfinished work.
        results = await asyncio.gather(*(self._answer(d) for d in deliveries))
        await self.bus.publish([o for outs in results for o in outs])

    def _messages(self, r: QueryRouted) -> list[dict]:
        messages: list[dict] = []
        if r.request.agent_id and self.agents is not None:
            agent = self.agents.get(f"{r.tenant_id}/{r.request.agent_id}")
            if agent is not None and agent.system_prompt:
                messages.append({"role": "system", "content": agent.system_prompt})
        messages.extend({"role": m.role, "content": m.content} for m in r.request.history)
        messages.append({"role": "user", "content": r.request.text})
        return messages

    async def _answer(self, d: Delivery[QueryRouted]) -> list[Outgoing]:
        r = d.event
        model = r.decision.model
        model_class = r.decision.model_class
        async with self._slots:
            try:
                completion: Completion | None = await self.backend.complete(model, self._messages(r))
                error = None
            except BackendUnavailable as exc:
                completion, error = None, str(exc)
        topics = self.bus.topics
        attempt = len(r.cascade) + 1
        if completion is None:
            metrics.MODEL_CALLS.labels(self.settings.pool, model, "error").inc()
            step = CascadeStep(model_class=model_class, model=model, error=error)
            usage = self._usage(r, attempt, None, error)
            return [Outgoing(topics.name("usage"), usage, cause=d), self._after_failure(d, step, error or "")]

        metrics.MODEL_CALLS.labels(self.settings.pool, model, "ok").inc()
        judged = score(r.request.text, completion.text, logprobs=completion.logprobs, finish_reason=completion.finish_reason)
        cost = self.pricing.cost(model, completion.input_tokens, completion.output_tokens) if self.pricing.knows(model) else 0.0
        metrics.COST_USD.labels(model_class.value).inc(cost)
        step = CascadeStep(
            model_class=model_class, model=model, confidence=judged.confidence, reasons=judged.reasons,
            input_tokens=completion.input_tokens, output_tokens=completion.output_tokens, cost_usd=cost,
            latency_ms=completion.latency_ms,
        )
        usage = self._usage(r, attempt, completion, None, cost)
        answer = Answer(text=completion.text, model_class=model_class, model=model, confidence=judged.confidence)
        best = answer if r.best_answer is None or answer.confidence >= r.best_answer.confidence else r.best_answer
        out = [Outgoing(topics.name("usage"), usage, cause=d)]
        if r.can_escalate and should_escalate(judged, r.cascade_threshold):
            out.append(Outgoing(topics.name("escalations"), self._escalation(r, step, best, judged.reasons), cause=d))
        else:
            out.append(Outgoing(topics.name("outcomes"), self._completed(r, step, answer), cause=d))
        return out

    def _usage(self, r: QueryRouted, attempt: int, c: Completion | None, error: str | None, cost: float = 0.0) -> UsageRecorded:
        tin, tout = (c.input_tokens, c.output_tokens) if c else (0, 0)
        return UsageRecorded(
            event_id=call_event_id(r.query_id, attempt),
            tenant_id=r.tenant_id,
            query_id=r.query_id,
            model=r.decision.model,
            model_class=r.decision.model_class,
            agent_id=r.request.agent_id,
            input_tokens=tin,
            output_tokens=tout,
            cost_usd=cost,
            llm_cost_usd=self.pricing.baseline_cost(tin, tout),
            latency_ms=c.latency_ms if c else 0.0,
            cascade_step=attempt > 1,
            error=error,
        )

    def _escalation(self, r: QueryRouted, step: CascadeStep, best: Answer | None, reasons: list[str]) -> QueryEscalated:
        return QueryEscalated(
            event_id=derived_id(r.query_id, "escalated", str(len(r.cascade) + 1)),
            tenant_id=r.tenant_id,
            query_id=r.query_id,
            request=r.request,
            decision=r.decision,
            submitted_at=r.submitted_at,
            cascade=[*r.cascade, step],
            cascade_threshold=r.cascade_threshold,
            best_answer=best,
            reasons=reasons,
        )

    def _completed(self, r: QueryRouted, step: CascadeStep, answer: Answer) -> QueryOutcome:
        steps = [*r.cascade, step]
        metrics.OUTCOMES.labels("inference", "completed").inc()
        return QueryOutcome(
            event_id=derived_id(r.query_id, "outcome"),
            tenant_id=r.tenant_id,
            query_id=r.query_id,
            status=OutcomeStatus.COMPLETED,
            submitted_at=r.submitted_at,
            answer=answer.text,
            model_class=answer.model_class,
            model=answer.model,
            confidence=answer.confidence,
            complexity=r.decision.complexity,
            cascade=steps,
            input_tokens=sum(s.input_tokens for s in steps),
            output_tokens=sum(s.output_tokens for s in steps),
            cost_usd=sum(s.cost_usd for s in steps),
            metadata=r.request.metadata,
        )

    def _after_failure(self, d: Delivery[QueryRouted], step: CascadeStep, error: str) -> Outgoing:
        """The backend stayed down: fall back to the next class up, else finish with the best answer or fail."""
        r = d.event
        topics = self.bus.topics
        if r.can_escalate:
            esc = self._escalation(r, step, r.best_answer, [f"backend unavailable: {error}"])
            return Outgoing(topics.name("escalations"), esc, cause=d)
        steps = [*r.cascade, step]
        common = dict(
            event_id=derived_id(r.query_id, "outcome"), tenant_id=r.tenant_id, query_id=r.query_id,
            submitted_at=r.submitted_at, complexity=r.decision.complexity, cascade=steps,
            input_tokens=sum(s.input_tokens for s in steps), output_tokens=sum(s.output_tokens for s in steps),
            cost_usd=sum(s.cost_usd for s in steps), metadata=r.request.metadata,
        )
        if r.best_answer is not None:
            b = r.best_answer
            metrics.OUTCOMES.labels("inference", "completed").inc()
            return Outgoing(topics.name("outcomes"), QueryOutcome(
                status=OutcomeStatus.COMPLETED, answer=b.text, model_class=b.model_class, model=b.model,
                confidence=b.confidence, reason=f"{r.decision.model} unavailable; earlier answer kept", **common,
            ), cause=d)
        metrics.OUTCOMES.labels("inference", "failed").inc()
        return Outgoing(topics.name("outcomes"), QueryOutcome(
            status=OutcomeStatus.FAILED, reason=f"model backend unavailable: {error}", **common,
        ), cause=d)
