"""Metering events: one record per model call, and the aggregated stream for analytics."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import Field

from .base import ID_MAX, Event, Model, QueryEvent
from .domain import ModelClass


class UsageRecorded(QueryEvent):
    """Inference → metering on ``usage.recorded``: exactly one per model call (a cascade costs two).

    ``event_id`` identifies the call: metering counts each id once, however often it is delivered.
    """

    TYPE: ClassVar[str] = "modelyard.usage.recorded.v1"
    type: Literal["modelyard.usage.recorded.v1"] = "modelyard.usage.recorded.v1"

    model: str = Field(max_length=128)
    model_class: ModelClass
    agent_id: str | None = Field(default=None, max_length=ID_MAX)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cost_usd: float = Field(ge=0, description="Price of this call from the pricing table.")
    llm_cost_usd: float = Field(ge=0, description="What the same tokens would have cost on the standard LLM.")
    latency_ms: float = Field(ge=0)
    cascade_step: bool = Field(default=False, description="True when this call re-answers an escalated query.")
    error: str | None = Field(default=None, description="Set when the call failed; such calls are metered too.")
    shadow: bool = Field(default=False, description="A shadow-evaluation call (the large model asked besides an accepted "
                         "small answer): metered in the shadow counters, not in the tenant's calls, tokens and cost.")
    shadow_agreed: bool | None = Field(default=None, description="For a shadow call that answered: whether its answer "
                                       "agreed with the small model's.")
    completions: int = Field(default=1, ge=1, description="Completions the call returned (OpenAI n, e.g. self-consistency "
                             "samples); the tokens and the cost cover all of them.")
    tenant_paid: bool = Field(default=False, description="The call went to the tenant's own endpoint (priced with "
                              "its prices, billed by its provider, not part of the platform's overage).")


class UsageCounters(Model):
    """Additive counters of usage documents; delta and totals on ``metering.usage`` have this shape."""

    calls: int = 0
    queries: int = 0
    errors: int = 0
    cascade_steps: int = 0
    #: completions the calls returned: more than ``calls`` when calls asked for several (self-consistency)
    completions: int = 0
    slm_calls: int = 0
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    llm_cost_usd: float = 0.0
    latency_ms_sum: float = 0.0
    latency_count: int = 0
    #: shadow evaluation: calls to the large model besides accepted small answers (not in the counters above:
    #: not billed), how many were compared and agreed, and their tokens and cost
    shadow_calls: int = 0
    shadow_compared: int = 0
    shadow_agreed: int = 0
    shadow_input_tokens: int = 0
    shadow_output_tokens: int = 0
    shadow_cost_usd: float = 0.0


class MeteringUsage(Event):
    """Metering → analytics on ``metering.usage``: after each flush, per touched tenant and day."""

    TYPE: ClassVar[str] = "modelyard.metering.usage.v1"
    type: Literal["modelyard.metering.usage.v1"] = "modelyard.metering.usage.v1"

    day: date
    delta: UsageCounters = Field(description="What this flush added.")
    totals: UsageCounters = Field(description="The tenant's totals for the day after this flush.")
