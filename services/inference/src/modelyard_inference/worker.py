"""The inference worker: answer routed queries, judge the answer, meter the call, finish or escalate.

Every answer is judged by ``answers.judge`` (verifiers, the trained scorer, and with a tenant's
self-consistency policy the k samples of a reasoning question compared by their final answers); a hard
verifier finding escalates whatever the threshold.

Per routed query exactly two events leave the worker, published before the query's offset can be
committed (see ``pipeline``):

* one ``UsageRecorded`` for the model call (failed calls too, with ``error`` set); its id is derived
  from (query, cascade step), so a redelivered batch is metered once however often it runs;
* one decision: a ``QueryEscalated`` (the answer is below the query's threshold, or the backend stayed
  down, and a higher class may still be tried — the router picks it), else a terminal ``QueryOutcome``:
  ``completed`` with the answer (or the best earlier answer when this call failed), or ``failed``.

Shadow evaluation (``shadow``) adds one event when the router sampled the query and the small model's
answer was accepted: a shadow copy for the large model's pool; that pool answers a copy with a usage
record marked ``shadow`` and a comparison, and nothing else.
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
    RouteContext,
    ShadowCompared,
    UsageRecorded,
    derived_id,
    finished_outcome,
)

from . import metrics, shadow
from .answers import Judgement, Model, judge, load_model, reasoning_question
from .backend import Backend, BackendUnavailable, Completion
from .settings import InferenceSettings

log = logging.getLogger(__name__)


def preferred(answer: Answer, hard: bool, earlier: Answer | None) -> Answer:
    """The answer a query keeps if nothing better comes: a larger model's answer replaces a smaller one's unsure
    answer, unless it failed a hard verifier (empty, refused, cut off, wrong arithmetic ...); then the surer of the
    two. Confidences are not compared otherwise: the scorer is trained on small-model answers, so its confidence
    in a larger model's answer is not on the same scale (on the recorded GSM8K answers, keeping the more
    confident answer kept the small one on a quarter of the escalated questions at the neutral threshold and
    cost 0.016 of quality; docs/benchmarks.md)."""
    if earlier is None or (not hard and answer.model_class != earlier.model_class):
        return answer
    return answer if answer.confidence >= earlier.confidence else earlier


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
    _slots: asyncio.Semaphore = field(init=False, repr=False)
    _in_flight: int = field(default=0, init=False)
    _peak: int = field(default=0, init=False)
    _unpriced: set[str] = field(default_factory=set, init=False, repr=False)
    _agent_sync: asyncio.Future | None = field(default=None, init=False, repr=False)
    _agents_synced_at: datetime = field(default=datetime.min.replace(tzinfo=UTC), init=False, repr=False)
    scorer: Model = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self.scorer = load_model(self.settings.cascade.scorer)

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
        async with self._slots:
            self._enter()
            try:
                call = await self._call(r)
            finally:
                self._leave()
        if r.shadow_of is not None:
            return self._shadow_compared(d, call)
        topics = self.bus.topics
        step_number = len(r.cascade) + 1
        model, model_class = r.decision.model, r.decision.model_class
        if call.completion is None:
            core_metrics.MODEL_CALLS.labels(self.settings.pool, model, "error").inc()
            step = CascadeStep(model_class=model_class, model=model, error=call.error, latency_ms=call.elapsed_ms)
            usage = self._usage(r, step_number, None, call.error, latency_ms=call.elapsed_ms)
            return [Outgoing(topics.name("usage"), usage, cause=d), self._after_failure(d, step, call.error or "")]

        c = call.completion
        core_metrics.MODEL_CALLS.labels(self.settings.pool, model, "ok").inc()
        judged = self.judge(r, c)
        cost = self._cost(model, c.input_tokens, c.output_tokens)
        core_metrics.COST_USD.labels(model_class.value).inc(cost)
        step = CascadeStep(
            model_class=model_class, model=model, confidence=judged.score.confidence, reasons=judged.score.reasons,
            input_tokens=c.input_tokens, output_tokens=c.output_tokens, cost_usd=cost, latency_ms=c.latency_ms,
        )
        usage = self._usage(r, step_number, c, None, cost=cost, latency_ms=c.latency_ms)
        return [Outgoing(topics.name("usage"), usage, cause=d), *self._decide(d, step, c, judged)]

    def judge(self, r: QueryRouted, c: Completion) -> Judgement:
        """The verdict on a call's answer (or its k samples): the code ``modelyard cascade-score`` runs."""
        # The request carries no response_format yet: issue 19 puts generation parameters on the event.
        min_agreement = r.self_consistency.min_agreement if r.self_consistency else 0.5
        return judge(r.request.text, c.samples, model=self.scorer, response_format=None, min_agreement=min_agreement)

    def sampling(self, r: QueryRouted) -> tuple[int, float | None]:
        """(completions, temperature) to ask for: k samples for a reasoning question under a self-consistency
        policy on the small model, else one answer at the backend's default temperature."""
        policy = r.self_consistency
        if policy is None or policy.samples < 2 or self.settings.pool != "slm" or not reasoning_question(r.request.text):
            return 1, None
        return policy.samples, policy.temperature

    async def _call(self, r: QueryRouted) -> CallResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        samples, temperature = self.sampling(r)
        try:
            completion = await self.backend.complete(r.decision.model, self.messages(r), samples=samples,
                                                     temperature=temperature)
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

    def _decide(self, d: Delivery[QueryRouted], step: CascadeStep, c: Completion, judged: Judgement) -> list[Outgoing]:
        """A confident answer completes (and, when sampled, is also put to the large model: ``shadow``); an unsure
        one escalates if it may, else the best answer so far completes."""
        r = d.event
        topics = self.bus.topics
        model, model_class = r.decision.model, r.decision.model_class
        text = c.samples[judged.chosen].text
        answer = Answer(text=text, model_class=model_class, model=model, confidence=judged.score.confidence)
        best = preferred(answer, judged.score.hard, r.best_answer)
        if not judged.score.escalate(r.cascade_threshold):
            done = [Outgoing(topics.name("outcomes"), self._completed(r, step, answer), cause=d)]
            if r.shadow is not None and not r.cascade:  # after the outcome: the caller waits for nothing more
                done.append(Outgoing(topics.routed(r.shadow.model_class.pool), shadow.shadow_copy(r, answer), cause=d))
            return done
        step = step.model_copy(update={"escalated": True})  # the cascade's verdict, for the router's learner
        if r.can_escalate:
            return [Outgoing(topics.name("escalations"), self._escalation(r, step, best, judged.score.reasons), cause=d)]
        # Unsure, and no higher class may be tried: this answer, unless it failed a verifier and an earlier one is surer.
        reason = None if best is answer else f"{model}'s answer failed a verifier; earlier answer kept"
        return [Outgoing(topics.name("outcomes"), self._completed(r, step, best, reason), cause=d)]

    def _shadow_compared(self, d: Delivery[QueryRouted], call: CallResult) -> list[Outgoing]:
        """A shadow copy: meter the call as shadow, compare the answers, publish the comparison (no outcome)."""
        r = d.event
        assert r.shadow_of is not None
        topics, c = self.bus.topics, call.completion
        model = r.decision.model
        core_metrics.MODEL_CALLS.labels(self.settings.pool, model, "ok" if c else "error").inc()
        cost = self._cost(model, c.input_tokens, c.output_tokens) if c else 0.0
        compared = shadow.compare(r.shadow_of.answer, c.text, self.settings.shadow_similarity) if c else None
        usage = self._usage(r, 1, c, call.error, cost=cost, latency_ms=call.elapsed_ms).model_copy(update={
            "event_id": shadow.shadow_call_id(r.query_id), "shadow": True,
            "shadow_agreed": compared.agreed if compared else None})
        out = [Outgoing(topics.name("usage"), usage, cause=d)]
        if compared is not None:
            metrics.SHADOW_COMPARISONS.labels("agreed" if compared.agreed else "disagreed").inc()
            out.append(Outgoing(topics.name("shadows"), ShadowCompared(
                event_id=derived_id(r.query_id, "shadow-compared"), tenant_id=r.tenant_id, query_id=r.query_id,
                route=RouteContext.of(r.request, r.decision), small_model=r.shadow_of.model, large_model=model,
                agreed=compared.agreed, method=compared.method, similarity=compared.similarity, share=r.shadow_of.share),
                cause=d))
        return out

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

    # -- events ----------------------------------------------------------------------------------

    def _cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        if self.pricing.knows(model):
            return self.pricing.cost(model, input_tokens, output_tokens)
        if model not in self._unpriced:
            self._unpriced.add(model)
            log.warning("model %s is not in the pricing table: its calls are metered at cost 0", model)
        return 0.0

    def _usage(self, r: QueryRouted, step: int, c: Completion | None, error: str | None, *,
               cost: float = 0.0, latency_ms: float = 0.0) -> UsageRecorded:
        tin, tout = (c.input_tokens, c.output_tokens) if c else (0, 0)
        completions = len(c.samples) if c else 1
        return UsageRecorded(
            event_id=call_event_id(r.query_id, step),
            tenant_id=r.tenant_id,
            query_id=r.query_id,
            model=r.decision.model,
            model_class=r.decision.model_class,
            agent_id=r.request.agent_id,
            input_tokens=tin,
            output_tokens=tout,
            cost_usd=cost,
            # the all-LLM counterfactual asks for one answer: a sample's mean length, not all k of them
            llm_cost_usd=self.pricing.baseline_cost(tin, round(tout / completions)),
            latency_ms=max(latency_ms, 0.0),
            cascade_step=step > 1,
            error=error,
            completions=completions,
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
