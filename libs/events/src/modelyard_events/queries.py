"""Events of a query's life: submitted → routed → (escalated → routed)* → outcome."""

from __future__ import annotations

import zlib
from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field

from .base import ID_MAX, Model, QueryEvent, derived_id
from .domain import ChatMessage, ComplexityLevel, ModelClass, SelfConsistency
from .generation import Choice, Generation, JSONObject, ModelError, StreamTo

TEXT_MAX = 32_000
MESSAGES_MAX = 256


class _RequestFields(Model):
    text: str = Field(min_length=1, max_length=TEXT_MAX, description="The user's query.")
    history: list[ChatMessage] = Field(default_factory=list, max_length=100, description="Earlier turns, oldest first.")
    user_role: str | None = Field(default=None, max_length=64, description="Role of the asking user, e.g. engineer, executive.")
    agent_id: str | None = Field(default=None, max_length=ID_MAX, description="Tenant agent whose system prompt to use.")
    agent_type: str | None = Field(default=None, max_length=64, description="Kind of agent, e.g. incident_specialist.")
    requested_class: ModelClass | None = Field(default=None, description="Pin a model class instead of letting the router decide.")
    requested_model: str | None = Field(default=None, max_length=128, description="Pin a concrete configured model.")
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32, description="Opaque caller data, echoed on the outcome.")
    generation: Generation | None = Field(default=None, description="OpenAI generation parameters, sent to the model unchanged.")
    messages: list[JSONObject] | None = Field(
        default=None, max_length=MESSAGES_MAX,
        description="The whole conversation as OpenAI messages, when it is more than text turns (assistant tool "
                    "calls, tool results, image parts): sent to the model as it is, after the agent's system prompt, "
                    "instead of history and text. text stays the last user message: what the router and the "
                    "judging of the answer read.")
    stream_to: StreamTo | None = Field(default=None, description="Stream the tokens of a final route here as they are generated.")


class QueryRequest(_RequestFields):
    """What was asked: carried unchanged from submission through every hop."""


class QuerySubmitted(QueryEvent, _RequestFields):
    """Upstream → router on ``queries.submitted`` (key: tenant_id)."""

    TYPE: ClassVar[str] = "modelyard.query.submitted.v1"
    type: Literal["modelyard.query.submitted.v1"] = "modelyard.query.submitted.v1"

    def request(self) -> QueryRequest:
        return QueryRequest.model_validate(self.model_dump(include=set(QueryRequest.model_fields)))


class RoutingDecision(Model):
    complexity: ComplexityLevel
    score: float = Field(description="Higher is harder: the keyword analysis's points, or with a learned router "
                         "model its estimated probability that the small model fails.")
    model_class: ModelClass
    model: str = Field(description="Concrete model that serves the class for this tenant.")
    reasons: list[str] = Field(default_factory=list, description="Why: one entry per factor that moved the score.")
    router_model: str | None = Field(default=None, max_length=128, description="The learned router model that chose the "
                                     "class (name@content id); then score is its P(small model fails). None: the "
                                     "keyword analysis chose, and score is its points.")


class CascadeStep(Model):
    """One model call in a query's cascade chain."""

    model_class: ModelClass
    model: str
    confidence: float | None = Field(default=None, ge=0, le=1)
    reasons: list[str] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Set when the call failed instead of answering.")
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    escalated: bool = Field(default=False, description="True when the cascade judged this answer not good enough and "
                            "sent the query on (or would have, had a higher class been allowed).")


class Answer(Model):
    text: str
    model_class: ModelClass
    model: str
    confidence: float = Field(ge=0, le=1)
    choices: list[Choice] | None = Field(default=None, description="Every choice, when more than text answered "
                                         "(several, tool calls, a refusal, a finish other than stop); text is the first's.")


class ShadowPlan(Model):
    """On a route to the small model that shadow evaluation sampled: where its shadow copy goes if the answer is
    accepted (the tenant's large model), and the tenant's sampling share."""

    share: float = Field(gt=0, le=1)
    model_class: ModelClass
    model: str = Field(max_length=128)


class ShadowOf(Model):
    """On a shadow copy sent to the large model's pool: the small model's accepted answer it is compared with.
    Its answer reaches nobody: the query's outcome was delivered with the small model's answer."""

    answer: str = Field(max_length=200_000)
    model: str = Field(max_length=128)
    share: float = Field(gt=0, le=1)


def shadow_sampled(query_id: str, share: float) -> bool:
    """Whether shadow evaluation samples this query at ``share``: the same answer everywhere, for every delivery."""
    return share > 0 and zlib.crc32(query_id.encode()) < share * 2**32


class QueryRouted(QueryEvent):
    """Router → inference pool on ``queries.routed.slm`` / ``queries.routed.llm``."""

    TYPE: ClassVar[str] = "modelyard.query.routed.v1"
    type: Literal["modelyard.query.routed.v1"] = "modelyard.query.routed.v1"

    request: QueryRequest
    decision: RoutingDecision
    submitted_at: datetime = Field(description="Time of the original submission, for end-to-end latency.")
    cascade: list[CascadeStep] = Field(default_factory=list, description="Earlier calls of this query, oldest first.")
    cascade_threshold: float = Field(default=0.6, ge=0, le=1, description="Confidence below which an answer escalates.")
    can_escalate: bool = Field(default=True, description="False when no higher class may be tried.")
    best_answer: Answer | None = Field(default=None, description="Best answer so far (from an earlier step).")
    shadow: ShadowPlan | None = Field(default=None, description="Set when shadow evaluation sampled this query: an "
                                      "accepted small-model answer is also put to the large model.")
    shadow_of: ShadowOf | None = Field(default=None, description="Set on a shadow copy: compare, do not answer.")
    self_consistency: SelfConsistency | None = Field(default=None, description="The tenant's self-consistency policy, on "
                                                     "routes to the small model when it asks for more than one sample.")


class QueryEscalated(QueryEvent):
    """Inference → router on ``queries.escalations``: the answer was not good enough, or the backend failed."""

    TYPE: ClassVar[str] = "modelyard.query.escalated.v1"
    type: Literal["modelyard.query.escalated.v1"] = "modelyard.query.escalated.v1"

    request: QueryRequest
    decision: RoutingDecision = Field(description="The decision that produced the step being escalated.")
    submitted_at: datetime
    cascade: list[CascadeStep] = Field(description="Every call so far, including the one that escalates.")
    cascade_threshold: float = Field(ge=0, le=1)
    best_answer: Answer | None = Field(default=None, description="Best answer so far; None when every call failed.")
    reasons: list[str] = Field(default_factory=list)


class OutcomeStatus(StrEnum):
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"


class RejectCode(StrEnum):
    UNKNOWN_TENANT = "unknown_tenant"
    SUSPENDED = "suspended"
    QUOTA = "quota"
    RATE_LIMITED = "rate_limited"
    POLICY = "policy"


class RouteContext(Model):
    """What the router decided on, echoed on the outcome of a query whose first answer came from the small model,
    so the router's learner can learn from what happened (issue 16): the query's words and context."""

    text: str = Field(max_length=TEXT_MAX)
    user_role: str | None = Field(default=None, max_length=64)
    agent_id: str | None = Field(default=None, max_length=ID_MAX)
    agent_type: str | None = Field(default=None, max_length=64)
    history_turns: int = Field(default=0, ge=0)
    router_model: str | None = Field(default=None, max_length=128, description="The learned model that routed it, if any.")

    @classmethod
    def of(cls, request: QueryRequest, decision: RoutingDecision) -> RouteContext:
        # The same count the router's analysis used: a messages conversation counts its turns before the last.
        turns = len(request.messages) - 1 if request.messages else len(request.history)
        return cls(text=request.text, user_role=request.user_role, agent_id=request.agent_id,
                   agent_type=request.agent_type, history_turns=max(turns, 0), router_model=decision.router_model)


class QueryOutcome(QueryEvent):
    """The one terminal event per query, on ``queries.outcomes``."""

    TYPE: ClassVar[str] = "modelyard.query.outcome.v1"
    type: Literal["modelyard.query.outcome.v1"] = "modelyard.query.outcome.v1"

    status: OutcomeStatus
    submitted_at: datetime | None = None
    answer: str | None = None
    model_class: ModelClass | None = None
    model: str | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    complexity: ComplexityLevel | None = None
    cascade: list[CascadeStep] = Field(default_factory=list)
    reject_code: RejectCode | None = None
    reason: str | None = Field(default=None, description="Human-readable reason for rejected and failed outcomes.")
    retry_after_s: float | None = Field(default=None, ge=0, description="For a rate_limited rejection: seconds until "
                                        "the same request would be admitted.")
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    metadata: dict[str, str] = Field(default_factory=dict)
    choices: list[Choice] | None = Field(default=None, description="Every choice as the model returned it, when "
                                         "answer alone does not say it all: several (n), tool calls, a refusal, a "
                                         "finish other than stop, log-probabilities. None: one text choice, answer.")
    error: ModelError | None = Field(default=None, description="On a failed outcome: the model refused the request "
                                     "(e.g. a parameter it does not support), with its own status and message.")
    route: RouteContext | None = Field(default=None, description="Set when the first model call was the small model's: "
                                       "what the router's learner needs to learn from this outcome.")


class ShadowCompared(QueryEvent):
    """Inference (the large model's pool) → the router's learner, on ``queries.shadows``: a sampled accepted
    small-model answer and the large model's answer to the same query, compared."""

    TYPE: ClassVar[str] = "modelyard.query.shadow_compared.v1"
    type: Literal["modelyard.query.shadow_compared.v1"] = "modelyard.query.shadow_compared.v1"

    route: RouteContext
    small_model: str = Field(max_length=128)
    large_model: str = Field(max_length=128)
    agreed: bool = Field(description="Whether the two final answers agree: the small model did as well as the large one.")
    method: Literal["exact", "similarity"] = Field(description="exact: short or structured answers (a number, an option, "
                                                   "JSON, a few words) compared normalised; similarity: word overlap "
                                                   "against the configured threshold.")
    similarity: float | None = Field(default=None, ge=0, le=1)
    share: float = Field(gt=0, le=1, description="The tenant's sampling share: the learner weighs the label by 1/share.")


def outcome_id(query_id: str) -> str:
    """The event id of a query's outcome: one per query, whichever service publishes it."""
    return derived_id(query_id, "outcome")


def finished_outcome(query: QueryRouted | QueryEscalated, cascade: list[CascadeStep], *, answer: Answer | None,
                     reason: str | None = None, error: ModelError | None = None) -> QueryOutcome:
    """The outcome of a query that made model calls: ``completed`` with ``answer``, ``failed`` without one.

    The inference pool builds it when a call ends the query, the router when an escalation may go no
    higher. Tokens and cost are the sums over ``cascade`` (every call, failed ones included); ``error`` is
    the model's refusal of the request, on a failed outcome.
    """
    common = dict(
        event_id=outcome_id(query.query_id), tenant_id=query.tenant_id, query_id=query.query_id,
        submitted_at=query.submitted_at, complexity=query.decision.complexity, cascade=cascade,
        input_tokens=sum(s.input_tokens for s in cascade), output_tokens=sum(s.output_tokens for s in cascade),
        cost_usd=sum(s.cost_usd for s in cascade), metadata=query.request.metadata, reason=reason,
        route=RouteContext.of(query.request, query.decision) if cascade and cascade[0].model_class is ModelClass.SLM else None,
    )
    if answer is None:
        return QueryOutcome(status=OutcomeStatus.FAILED, error=error, **common)
    return QueryOutcome(status=OutcomeStatus.COMPLETED, answer=answer.text, model_class=answer.model_class,
                        model=answer.model, confidence=answer.confidence, choices=answer.choices, **common)
