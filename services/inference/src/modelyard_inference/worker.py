"""The inference worker: answer routed queries, judge the answer, meter the call, finish or escalate.

Every answer is judged by ``answers.judge`` (verifiers, the trained scorer, and with a tenant's
self-consistency policy the k samples of a reasoning question compared by their final answers), through
``judging`` (tool calls and refusals, the choices of a caller's ``n``); a hard finding escalates whatever
the threshold.

Per routed query exactly two events leave the worker, published before the query's offset can be
committed (see ``pipeline``):

* one ``UsageRecorded`` for the model call (failed calls too, with ``error`` set); its id is derived
  from (query, cascade step), so a redelivered batch is metered once however often it runs;
* one decision: a ``QueryEscalated`` (the answer is below the query's threshold, or the backend stayed
  down, and a higher class may still be tried — the router picks it), else a terminal ``QueryOutcome``:
  ``completed`` with the answer (or the best earlier answer when this call failed), or ``failed``.

The call carries the query's generation parameters (``Generation``) and, when the conversation is more
than text turns, its OpenAI ``messages`` as they are. A model that refuses the request (a 400) fails the
query with its own error: escalating would only ask a larger model the same wrong question. A model the
pricing table says reads no images is not asked about images: the query escalates without a call (no
usage record), or fails with a 400 naming the image when no class is left. A final route of a streamed
query streams its tokens live (``streams``) and completes with its answer whatever its confidence: the
caller already has it.

Shadow evaluation (``shadow``) adds one event when the router sampled the query and the small model's
answer was accepted: a shadow copy for the large model's pool; that pool answers a copy with a usage
record marked ``shadow`` and a comparison, and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from modelyard_core import metrics as core_metrics
from modelyard_core.bus import Bus, Delivery, Outgoing
from modelyard_core.pricing import PricingTable
from modelyard_core.views import CompactedTopicView
from modelyard_events import (
    AgentSnapshot,
    Answer,
    CascadeStep,
    Generation,
    ModelError,
    QueryEscalated,
    QueryOutcome,
    QueryRouted,
    UsageRecorded,
    derived_id,
    finished_outcome,
)

from . import metrics, shadow
from .agents import Agents, agent_key  # noqa: F401 - agent_key: part of this module's interface
from .answers import Judgement, Model, load_model, reasoning_question
from .backend import Backend, BackendRejected, BackendUnavailable, Completion
from .judging import answer_of, judge_call, preferred
from .settings import InferenceSettings
from .streams import ChunkStream
from .tenant_models import OwnModel, TenantModels

log = logging.getLogger(__name__)


def call_event_id(query_id: str, step: int) -> str:
    # One id per (query, cascade step): a redelivered step is metered once, however often it runs.
    return derived_id(query_id, "call", str(step))


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one model call of one query came to."""

    completion: Completion | None
    error: str | None
    elapsed_ms: float
    #: the model refused the request: its own error
    rejected: ModelError | None = None


def image_part(messages: list[dict[str, Any]] | None) -> str | None:
    """Where the conversation's first image is (``messages[i].content[j]``), or None."""
    for i, m in enumerate(messages or ()):
        content = m.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "image_url":
                    return f"messages[{i}].content[{j}]"
    return None


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
    _agents: Agents = field(init=False, repr=False)

    scorer: Model = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self.scorer = load_model(self.settings.cascade.scorer)
        self._agents = Agents(self.agents, self.settings.agent_sync_timeout_s)

    # -- the handler -----------------------------------------------------------------------------

    async def answer_one(self, d: Delivery[QueryRouted]) -> list[Outgoing]:
        """The events of one routed query: its usage record and its decision (escalation or outcome).

        The pipelined consumer runs this for up to ``concurrency`` records at once and publishes the
        events; the semaphore bounds the model calls in flight for any other caller too.
        """
        await self._agents.catch_up(d.event)
        return await self._answer(d)

    async def answer_all(self, deliveries: list[Delivery[QueryRouted]]) -> list[Outgoing]:
        """Answer several queries concurrently; their events, in order (for tools and tests)."""
        results = await asyncio.gather(*(self.answer_one(d) for d in deliveries))
        return [o for outs in results for o in outs]

    # -- one query -------------------------------------------------------------------------------

    async def _answer(self, d: Delivery[QueryRouted]) -> list[Outgoing]:
        r = d.event
        topics = self.bus.topics
        step_number = len(r.cascade) + 1
        own = self.tenant_models.for_query(r) if self.tenant_models is not None else None
        model, model_class = own.model if own else r.decision.model, r.decision.model_class
        if (where := image_part(r.request.messages)) is not None and self.pricing.reads_images(model) is False:
            return [] if r.shadow_of is not None else [self._unreadable(d, where)]
        if r.shadow_of is not None:  # a copy to compare: the platform's model, no stream, no outcome
            own = None
        live = self._live_stream(d)
        samples, generation = self.sampling(r, live is not None)
        async with self._slots:
            self._enter()
            try:
                call = await self._call(r, generation, live, own)
            finally:
                self._leave()
        if r.shadow_of is not None:
            return self._shadow_compared(d, call)
        if call.completion is None:
            core_metrics.MODEL_CALLS.labels(self.settings.pool, model, "error").inc()
            step = CascadeStep(model_class=model_class, model=model, error=call.error, latency_ms=call.elapsed_ms)
            usage = self._usage(r, step_number, None, call.error, latency_ms=call.elapsed_ms, own=own)
            if call.rejected is not None or (live is not None and live.started):
                # The request is wrong, or the caller has part of this answer: nothing to escalate.
                failed = finished_outcome(r, [*r.cascade, step], answer=None, error=call.rejected,
                                          reason=f"{model}: {call.error}")
                core_metrics.OUTCOMES.labels("inference", "failed").inc()
                return [Outgoing(topics.name("usage"), usage, cause=d), Outgoing(topics.name("outcomes"), failed, cause=d)]
            after = self._own_failed(d, step, own, call.error or "") if own else self._after_failure(d, step, call.error or "")
            return [Outgoing(topics.name("usage"), usage, cause=d), after]

        c = call.completion
        core_metrics.MODEL_CALLS.labels(self.settings.pool, model, "ok").inc()
        judged = self.judge(r, c, voting=samples > 1)
        cost = own.cost(c.input_tokens, c.output_tokens) if own else self._cost(model, c.input_tokens, c.output_tokens)
        core_metrics.COST_USD.labels(model_class.value).inc(cost)
        step = CascadeStep(
            model_class=model_class, model=model, confidence=judged.score.confidence, reasons=judged.score.reasons,
            input_tokens=c.input_tokens, output_tokens=c.output_tokens, cost_usd=cost, latency_ms=c.latency_ms,
        )
        usage = self._usage(r, step_number, c, None, cost=cost, latency_ms=c.latency_ms, samples=samples, own=own)
        chosen = judged.chosen if samples > 1 else None
        if live is not None:  # streamed: the caller has this answer already, it is the outcome
            answer = answer_of(c, model_class, model, judged.score.confidence)
            unsure = judged.score.escalate(r.cascade_threshold) and r.can_escalate
            reason = "streamed as generated: kept although below the cascade threshold" if unsure else None
            return [Outgoing(topics.name("usage"), usage, cause=d),
                    Outgoing(topics.name("outcomes"), self._completed(r, step, answer, reason), cause=d)]
        return [Outgoing(topics.name("usage"), usage, cause=d), *self._decide(d, step, c, judged, chosen)]

    def judge(self, r: QueryRouted, c: Completion, *, voting: bool = False) -> Judgement:
        """The verdict on a call's answer (its choices, or its k self-consistency samples compared)."""
        min_agreement = r.self_consistency.min_agreement if r.self_consistency else 0.5
        return judge_call(r.request.text, c, r.request.generation, model=self.scorer, min_agreement=min_agreement,
                          voting=voting)

    def sampling(self, r: QueryRouted, live: bool = False) -> tuple[int, Generation | None]:
        """(samples, generation parameters) of the call: k samples at the policy's temperature for a reasoning
        question under a self-consistency policy on the small model — unless the caller chose ``n`` or a
        temperature, offers tools, or the answer streams live — else one answer with the caller's parameters."""
        policy, g = r.self_consistency, r.request.generation
        if (policy is None or policy.samples < 2 or self.settings.pool != "slm" or live
                or (g is not None and (g.n is not None or g.temperature is not None or g.offers_tools))
                or not reasoning_question(r.request.text)):
            return 1, g
        return policy.samples, (g or Generation()).model_copy(update={"n": policy.samples, "temperature": policy.temperature})

    def _live_stream(self, d: Delivery[QueryRouted]) -> ChunkStream | None:
        """Batches for the asker when the query streams and this call's answer is final (see ``streams``)."""
        r = d.event
        if r.request.stream_to is None or (r.can_escalate and self.settings.pool != "llm"):
            return None
        return ChunkStream(self.bus, d, flush_s=self.settings.stream_flush_ms / 1000,
                           max_deltas=self.settings.stream_max_deltas)

    async def _call(self, r: QueryRouted, generation: Generation | None, live: ChunkStream | None = None,
                    own: OwnModel | None = None) -> CallResult:
        loop = asyncio.get_running_loop()
        started = loop.time()
        if own is not None and own.backend is None:
            return CallResult(None, own.problem, 0.0)
        backend, model = (own.backend, own.model) if own is not None and own.backend is not None else (self.backend, r.decision.model)
        try:
            if live is None:
                completion = await backend.complete(model, self.messages(r), generation)
            else:
                try:
                    completion = await backend.stream(model, self.messages(r), generation, live.add)
                finally:
                    await live.close()
            return CallResult(completion, None, completion.latency_ms)
        except BackendRejected as exc:
            return CallResult(None, str(exc), exc.elapsed_ms, exc.error)
        except BackendUnavailable as exc:
            return CallResult(None, str(exc), exc.elapsed_ms)
        except Exception as exc:  # noqa: BLE001 - a bug must not cost the query its outcome
            log.exception("model call for query %s failed unexpectedly", r.query_id)
            return CallResult(None, f"internal error: {type(exc).__name__}: {exc}"[:500], (loop.time() - started) * 1000)

    def _unreadable(self, d: Delivery[QueryRouted], where: str) -> Outgoing:
        """The model reads no images: escalate without a call, or fail naming the image (OpenAI's 400)."""
        r = d.event
        model = r.decision.model
        why = f"{model} reads no images ({where})"
        step = CascadeStep(model_class=r.decision.model_class, model=model, error=f"not called: {why}")
        if r.can_escalate:
            return Outgoing(self.bus.topics.name("escalations"), self._escalation(r, step, r.best_answer, [why]), cause=d)
        error = ModelError(status=400, message=f"Invalid content type. image_url is only supported by certain models ({why}).",
                           type="invalid_request_error", code="unsupported_content", param=f"{where}.type")
        core_metrics.OUTCOMES.labels("inference", "failed").inc()
        failed = finished_outcome(r, [*r.cascade, step], answer=None, error=error, reason=why)
        return Outgoing(self.bus.topics.name("outcomes"), failed, cause=d)

    def messages(self, r: QueryRouted) -> list[dict[str, Any]]:
        """The conversation sent to the model: the agent's system prompt, then the caller's OpenAI messages
        as they are, or the history and the query."""
        messages: list[dict[str, Any]] = []
        if (agent := self._agents.of(r)) is not None and agent.system_prompt:
            messages.append({"role": "system", "content": agent.system_prompt})
        if r.request.messages:
            messages.extend(r.request.messages)
            return messages
        messages.extend({"role": m.role, "content": m.content} for m in r.request.history)
        messages.append({"role": "user", "content": r.request.text})
        return messages

    # -- decisions -------------------------------------------------------------------------------

    def _decide(self, d: Delivery[QueryRouted], step: CascadeStep, c: Completion, judged: Judgement,
                chosen: int | None = None) -> list[Outgoing]:
        """A confident answer completes (and, when sampled, is also put to the large model: ``shadow``); an unsure
        one escalates if it may, else the best answer so far completes."""
        r = d.event
        topics = self.bus.topics
        model, model_class = step.model, r.decision.model_class
        answer = answer_of(c, model_class, model, judged.score.confidence, chosen)
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
        """A shadow copy: meter the call as shadow (not billed), compare the answers, publish the comparison."""
        r, c, model = d.event, call.completion, d.event.decision.model
        core_metrics.MODEL_CALLS.labels(self.settings.pool, model, "ok" if c else "error").inc()
        cost = self._cost(model, c.input_tokens, c.output_tokens) if c else 0.0
        usage = self._usage(r, 1, c, call.error, cost=cost, latency_ms=call.elapsed_ms)
        return shadow.compared_events(d, usage, c.text if c else None, self.bus.topics, self.settings.shadow_similarity)

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
               cost: float = 0.0, latency_ms: float = 0.0, samples: int = 1,
               own: OwnModel | None = None) -> UsageRecorded:
        tin, tout = (c.input_tokens, c.output_tokens) if c else (0, 0)
        completions = len(c.samples) if c else 1
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
            # the all-LLM counterfactual asks for the caller's answers: one sample's mean length of k
            # self-consistency samples, every choice of the caller's own n
            llm_cost_usd=self.pricing.baseline_cost(tin, round(tout / samples)),
            latency_ms=max(latency_ms, 0.0),
            cascade_step=step > 1,
            error=error,
            completions=completions,
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
