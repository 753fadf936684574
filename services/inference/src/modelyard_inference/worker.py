"""The inference worker: answer routed queries, judge the answer, meter the call, finish or escalate.

Per routed query exactly two events leave the worker, published before the query's offset can be
committed (see ``pipeline``):

* one ``UsageRecorded`` for the model call (failed calls too, with ``error`` set); its id is derived
  from (query, cascade step), so a redelivered batch is metered once however often it runs;
* one decision: a ``QueryEscalated`` (the answer is below the query's threshold, or the backend stayed
  down, and a higher class may still be tried — the router picks it), else a terminal ``QueryOutcome``:
  ``completed`` with the answer (or the best earlier answer when this call failed), or ``failed``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelyard_core import metrics as core_metrics
from modelyard_core.bus import Bus, Delivery, Outgoing
from modelyard_core.pricing import PricingTable
from modelyard_core.views import CompactedTopicView
from modelyard_events import (
    AgentSnapshot,
    Answer,
    CascadeStep,
    QueryEscalated,
    QueryOutcome,
    QueryRouted,
    UsageRecorded,
    derived_id,
    finished_outcome,
)

from . import metrics
from .backend import Backend, BackendUnavailable, Completion
from .confidence import Confidence, score, should_escalate
from .settings import InferenceSettings
from .tenant_models import OwnModel, TenantModels

log = logging.getLogger(__name__)


def call_event_id(query_id: str, step: int) -> str:
    # One id per (query, cascade step): a redelivered step is metered once, however often it runs.
    return derived_id(query_id, "call", str(step))


def agent_key(tenant_id: str, agent_id: str) -> str:
    """Key of an agent on the compacted ``tenants.agents`` topic."""
    return f"{tenant_id}/{agent_id}"


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one model call of one query came to."""

    completion: Completion | None
    error: str | None
    elapsed_ms: float


@dataclass
class Worker:
    settings: InferenceSettings
    bus: Bus
    backend: Backend
    pricing: PricingTable
    agents: CompactedTopicView[AgentSnapshot] | None = None
    #: Tenants' own endpoints (bring your own model); None: every query goes to the pool's backend.
    tenant_models: TenantModels | None = None
    _slots: asyncio.Semaphore = field(init=False, repr=False)
    _in_flight: int = field(default=0, init=False)
    _peak: int = field(default=0, init=False)
    _unpriced: set[str] = field(default_factory=set, init=False, repr=False)
    _agent_sync: asyncio.Future | None = field(default=None, init=False, repr=False)
    _agents_synced_at: datetime = field(default=datetime.min.replace(tzinfo=UTC), init=False, repr=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.settings.concurrency)

    # -- the handler -----------------------------------------------------------------------------

    async def answer_one(self, d: Delivery[QueryRouted]) -> list[Outgoing]:
        """The events of one routed query: its usage record and its decision (escalation or outcome).

        The pipelined consumer runs this for up to ``concurrency`` records at once and publishes the
        events; the semaphore bounds the model calls in flight for any other caller too.
        """
        await self._catch_up_on_agent(d.event)
        return await self._answer(d)

    async def answer_all(self, deliveries: list[Delivery[QueryRouted]]) -> list[Outgoing]:
        """Answer several queries concurrently; their events, in order (for tools and tests)."""
        results = await asyncio.gather(*(self.answer_one(d) for d in deliveries))
        return [o for outs in results for o in outs]

    # -- one query -------------------------------------------------------------------------------

    async def _answer(self, d: Delivery[QueryRouted]) -> list[Outgoing]:
        r = d.event
        own = self.tenant_models.for_query(r) if self.tenant_models is not None else None
        async with self._slots:
            self._enter()
            try:
                call = await self._call(r, own)
            finally:
                self._leave()
        topics = self.bus.topics
        step_number = len(r.cascade) + 1
        model, model_class = own.model if own else r.decision.model, r.decision.model_class
        if call.completion is None:
            core_metrics.MODEL_CALLS.labels(self.settings.pool, model, "error").inc()
            step = CascadeStep(model_class=model_class, model=model, error=call.error, latency_ms=call.elapsed_ms)
            usage = self._usage(r, step_number, None, call.error, latency_ms=call.elapsed_ms, own=own)
            after = self._own_failed(d, step, own, call.error or "") if own else self._after_failure(d, step, call.error or "")
            return [Outgoing(topics.name("usage"), usage, cause=d), after]

        c = call.completion
        core_metrics.MODEL_CALLS.labels(self.settings.pool, model, "ok").inc()
        judged = score(r.request.text, c.text, logprobs=c.logprobs, finish_reason=c.finish_reason)
        cost = own.cost(c.input_tokens, c.output_tokens) if own else self._cost(model, c.input_tokens, c.output_tokens)
        core_metrics.COST_USD.labels(model_class.value).inc(cost)
        step = CascadeStep(
            model_class=model_class, model=model, confidence=judged.confidence, reasons=judged.reasons,
            input_tokens=c.input_tokens, output_tokens=c.output_tokens, cost_usd=cost, latency_ms=c.latency_ms,
        )
        usage = self._usage(r, step_number, c, None, cost=cost, latency_ms=c.latency_ms, own=own)
        return [Outgoing(topics.name("usage"), usage, cause=d), self._decide(d, step, c, judged)]

    async def _call(self, r: QueryRouted, own: OwnModel | None = None) -> CallResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        if own is not None and own.backend is None:
            return CallResult(None, own.problem, 0.0)
        backend, model = (own.backend, own.model) if own is not None and own.backend is not None else (self.backend, r.decision.model)
        try:
            completion = await backend.complete(model, self.messages(r))
            return CallResult(completion, None, completion.latency_ms)
        except BackendUnavailable as exc:
            return CallResult(None, str(exc), exc.elapsed_ms)
        except Exception as exc:  # noqa: BLE001 - a bug must not cost the query its outcome
            log.exception("model call for query %s failed unexpectedly", r.query_id)
            return CallResult(None, f"internal error: {type(exc).__name__}: {exc}"[:500], (loop.time() - started) * 1000)

    def messages(self, r: QueryRouted) -> list[dict[str, str]]:
        """The conversation sent to the model: the agent's system prompt, the history, the query."""
        messages: list[dict[str, str]] = []
        if (agent := self._agent(r)) is not None and agent.system_prompt:
            messages.append({"role": "system", "content": agent.system_prompt})
        messages.extend({"role": m.role, "content": m.content} for m in r.request.history)
        messages.append({"role": "user", "content": r.request.text})
        return messages

    def _agent(self, r: QueryRouted) -> AgentSnapshot | None:
        if not r.request.agent_id or self.agents is None:
            return None
        return self.agents.get(agent_key(r.tenant_id, r.request.agent_id))

    async def _catch_up_on_agent(self, r: QueryRouted) -> None:
        """An agent created a moment before its first query may not be in the view yet: let the view catch up.

        Queries waiting at the same time share one catch-up, and one that started after the query was
        routed already covers it: queries naming an agent that does not exist cost at most one catch-up
        at a time, never one each.
        """
        if (self.agents is None or not r.request.agent_id or self.settings.agent_sync_timeout_s <= 0
                or self._agent(r) is not None or self._agents_synced_at >= r.time):
            return
        if self._agent_sync is None or self._agent_sync.done():
            self._agent_sync = asyncio.ensure_future(self._sync_agents())
        await asyncio.shield(self._agent_sync)

    async def _sync_agents(self) -> None:
        started = datetime.now(UTC)
        assert self.agents is not None
        try:
            if await self.agents.sync(timeout_s=self.settings.agent_sync_timeout_s):
                self._agents_synced_at = started
        except Exception as exc:  # noqa: BLE001 - answer without the system prompt rather than not at all
            log.warning("agents view could not catch up: %r", exc)

    # -- decisions -------------------------------------------------------------------------------

    def _decide(self, d: Delivery[QueryRouted], step: CascadeStep, c: Completion, judged: Confidence) -> Outgoing:
        """A confident answer completes; an unsure one escalates if it may, else the best answer so far completes."""
        r = d.event
        topics = self.bus.topics
        model, model_class = step.model, r.decision.model_class
        answer = Answer(text=c.text, model_class=model_class, model=model, confidence=judged.confidence)
        best = answer if r.best_answer is None or answer.confidence >= r.best_answer.confidence else r.best_answer
        if not should_escalate(judged, r.cascade_threshold):
            return Outgoing(topics.name("outcomes"), self._completed(r, step, answer), cause=d)
        if r.can_escalate:
            return Outgoing(topics.name("escalations"), self._escalation(r, step, best, judged.reasons), cause=d)
        # Unsure, and no higher class may be tried: the most confident answer of the chain wins.
        reason = None if best is answer else f"{model} answered with lower confidence; earlier answer kept"
        return Outgoing(topics.name("outcomes"), self._completed(r, step, best, reason), cause=d)

    def _after_failure(self, d: Delivery[QueryRouted], step: CascadeStep, error: str) -> Outgoing:
        """The backend stayed down: fall back to the next class up, else finish with the best answer or fail."""
        r = d.event
        topics = self.bus.topics
        if r.can_escalate:
            esc = self._escalation(r, step, r.best_answer, [f"backend unavailable: {error}"])
            return Outgoing(topics.name("escalations"), esc, cause=d)
        if r.best_answer is not None:
            reason = f"{r.decision.model} unavailable; earlier answer kept"
            return Outgoing(topics.name("outcomes"), self._completed(r, step, r.best_answer, reason), cause=d)
        steps = [*r.cascade, step]
        core_metrics.OUTCOMES.labels("inference", "failed").inc()
        failed = finished_outcome(r, steps, answer=None, reason=f"model backend unavailable: {error}")
        return Outgoing(topics.name("outcomes"), failed, cause=d)

    def _own_failed(self, d: Delivery[QueryRouted], step: CascadeStep, own: OwnModel, error: str) -> Outgoing:
        """The tenant's own endpoint failed: that query ends here (the platform's models do not stand in
        for a model the tenant chose and pays for), with the best earlier answer if there is one."""
        r = d.event
        topics = self.bus.topics
        reason = own.describe(error)
        if r.best_answer is not None:
            return Outgoing(topics.name("outcomes"), self._completed(r, step, r.best_answer, f"{reason}; earlier answer kept"), cause=d)
        core_metrics.OUTCOMES.labels("inference", "failed").inc()
        return Outgoing(topics.name("outcomes"), finished_outcome(r, [*r.cascade, step], answer=None, reason=reason), cause=d)

    # -- events ----------------------------------------------------------------------------------

    def _cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        if self.pricing.knows(model):
            return self.pricing.cost(model, input_tokens, output_tokens)
        if model not in self._unpriced:
            self._unpriced.add(model)
            log.warning("model %s is not in the pricing table: its calls are metered at cost 0", model)
        return 0.0

    def _usage(self, r: QueryRouted, step: int, c: Completion | None, error: str | None, *,
               cost: float = 0.0, latency_ms: float = 0.0, own: OwnModel | None = None) -> UsageRecorded:
        tin, tout = (c.input_tokens, c.output_tokens) if c else (0, 0)
        return UsageRecorded(
            event_id=call_event_id(r.query_id, step),
            tenant_id=r.tenant_id,
            query_id=r.query_id,
            model=own.model if own else r.decision.model,
            model_class=r.decision.model_class,
            agent_id=r.request.agent_id,
            input_tokens=tin,
            output_tokens=tout,
            cost_usd=cost,
            llm_cost_usd=self.pricing.baseline_cost(tin, tout),
            latency_ms=max(latency_ms, 0.0),
            cascade_step=step > 1,
            error=error,
            tenant_paid=own is not None,
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

    def _completed(self, r: QueryRouted, step: CascadeStep, answer: Answer, reason: str | None = None) -> QueryOutcome:
        core_metrics.OUTCOMES.labels("inference", "completed").inc()
        return finished_outcome(r, [*r.cascade, step], answer=answer, reason=reason)

    # -- in-flight accounting --------------------------------------------------------------------

    def _enter(self) -> None:
        self._in_flight += 1
        metrics.IN_FLIGHT.labels(self.settings.pool).inc()
        if self._in_flight > self._peak:
            self._peak = self._in_flight
            metrics.IN_FLIGHT_PEAK.labels(self.settings.pool).set(self._peak)

    def _leave(self) -> None:
        self._in_flight -= 1
        metrics.IN_FLIGHT.labels(self.settings.pool).dec()
