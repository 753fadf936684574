"""What a query asks of the model besides its words, and what the model answered, in OpenAI's terms.

* ``Generation`` — the OpenAI chat-completions parameters a query carries to the model unchanged
  (temperature, max_tokens, stop, seed, tools, response_format, n, ...), on the SLM attempt and on
  every escalation alike. Bounds are OpenAI's documented ones, so an impossible value is refused where
  it enters (HTTP 400 at the ingress, the dead-letter topic for a Kafka publisher); whatever a
  particular backend refuses beyond that comes back on the outcome as that backend's error
  (``ModelError``).
* ``StreamTo`` — where the tokens of a query whose route is final are streamed while they are
  generated: a partition of ``queries.streams`` the asker reads (the ingress reads one per instance).
* ``Choice`` — one completion as the model returned it: text, refusal, tool calls, finish reason.
* ``QueryChunk`` — a batch of streamed deltas (``ChoiceDelta``) of one model call, on ``queries.streams``.

JSON-shaped values (tools, response_format, tool calls) are carried as JSON objects, not re-modelled:
they reach the model byte for byte as the caller wrote them, including fields newer than this contract.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .base import ID_MAX, Model, QueryEvent
from .domain import ModelClass

#: A JSON object, passed through untouched.
JSONObject = dict[str, Any]

Penalty = Annotated[float, Field(ge=-2, le=2)]
Bias = Annotated[float, Field(ge=-100, le=100)]
StopSequence = Annotated[str, Field(min_length=1, max_length=1_000)]


class Generation(Model):
    """OpenAI chat-completions parameters sent to the model as they are (``None``: not sent).

    The inference worker adds only what it needs itself when the caller left it unset: a default
    ``max_tokens`` (``MODELYARD_MAX_OUTPUT_TOKENS``) and ``logprobs`` for judging the answer (returned to
    the caller only when the caller asked for them).
    """

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, description="Deprecated by OpenAI for max_completion_tokens; both are passed on.")
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: StopSequence | Annotated[list[StopSequence], Field(min_length=1, max_length=4)] | None = None
    seed: int | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Bias] | None = Field(default=None, max_length=1_024)
    logprobs: bool | None = Field(default=None, description="The caller wants log-probabilities on its choices.")
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    n: int | None = Field(default=None, ge=1, le=128, description="Completions to generate; usage counts all of them.")
    response_format: JSONObject | None = Field(default=None, description="{'type': 'text' | 'json_object' | 'json_schema', ...}")
    tools: list[JSONObject] | None = Field(default=None, max_length=128)
    tool_choice: str | JSONObject | None = None
    parallel_tool_calls: bool | None = None
    functions: list[JSONObject] | None = Field(default=None, max_length=128, description="OpenAI's deprecated form of tools.")
    function_call: str | JSONObject | None = Field(default=None, description="OpenAI's deprecated form of tool_choice.")
    user: str | None = Field(default=None, max_length=256, description="The end user, for the provider's abuse monitoring.")
    reasoning_effort: str | None = Field(default=None, max_length=32)

    def body(self) -> JSONObject:
        """The parameters as request-body fields (unset ones left out)."""
        return self.model_dump(exclude_none=True)

    @property
    def offers_tools(self) -> bool:
        return bool(self.tools or self.functions)

    @property
    def choices(self) -> int:
        return self.n or 1


class StreamTo(Model):
    """Stream the query's tokens to this partition of ``queries.streams`` while the model generates them."""

    partition: int = Field(ge=0, le=100_000, description="The partition the asker reads (the ingress: one per instance).")
    instance: str = Field(default="", max_length=ID_MAX, description="Who reads it (an ingress instance id), for tracing.")


class Choice(Model):
    """One completion as the model returned it (OpenAI's ``choices[i]``, message flattened)."""

    index: int = Field(default=0, ge=0)
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[JSONObject] | None = Field(default=None, description="[{'id', 'type': 'function', 'function': {'name', 'arguments'}}]")
    function_call: JSONObject | None = Field(default=None, description="The deprecated form: {'name', 'arguments'}.")
    finish_reason: str | None = None
    logprobs: JSONObject | None = Field(default=None, description="Only when the caller asked for log-probabilities.")

    @property
    def plain(self) -> bool:
        """Text that finished normally, and nothing else: what ``QueryOutcome.answer`` alone says."""
        return (self.index == 0 and self.refusal is None and not self.tool_calls and self.function_call is None
                and self.finish_reason in ("stop", None) and self.logprobs is None)


class ModelError(Model):
    """The model refused the request (a 4xx other than 408/409/429): its error, as it said it."""

    status: int = Field(ge=400, le=499)
    message: str = Field(max_length=2_000)
    type: str | None = Field(default=None, max_length=64)
    code: str | None = Field(default=None, max_length=64)
    param: str | None = Field(default=None, max_length=256)


class ChoiceDelta(Model):
    """What one choice added in one streamed chunk (OpenAI's ``choices[i].delta`` plus its finish reason)."""

    index: int = Field(default=0, ge=0)
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[JSONObject] | None = Field(default=None, description="Delta entries: {'index', 'id'?, 'type'?, 'function': {'name'?, 'arguments'?}}")
    function_call: JSONObject | None = None
    finish_reason: str | None = None
    logprobs: JSONObject | None = None


class QueryChunk(QueryEvent):
    """Inference → the asker on ``queries.streams`` (the partition ``StreamTo`` names): tokens as they come.

    Only a model call whose answer is final streams (see the ingress's README). Batches of one call are
    numbered from 0 by ``seq``; ``run`` is new for every call, so a reader recognises a call that was
    restarted after a crash. The query's ``QueryOutcome`` still follows on ``queries.outcomes`` and is
    the whole answer: a reader that missed a batch completes its stream from it.
    """

    TYPE: ClassVar[str] = "modelyard.query.chunk.v1"
    type: Literal["modelyard.query.chunk.v1"] = "modelyard.query.chunk.v1"

    run: str = Field(max_length=ID_MAX, description="Id of the model call that produced the batch.")
    seq: int = Field(ge=0, description="Position of this batch in its call's stream, from 0.")
    model: str = Field(max_length=128)
    model_class: ModelClass
    deltas: list[ChoiceDelta] = Field(default_factory=list, max_length=10_000)
    done: bool = Field(default=False, description="The call's last batch: every choice has finished.")
