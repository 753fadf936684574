"""Parsing and validating a chat-completions request body as OpenAI does, with its errors naming the field.

Validated (a request the real API would refuse is refused with OpenAI's 400 and ``param``):
``model``, ``messages`` (see messages.py), ``temperature`` 0..2, ``top_p`` 0..1, ``presence_penalty`` and
``frequency_penalty`` -2..2, ``n`` 1..128, ``max_tokens`` / ``max_completion_tokens`` >= 1, ``stop`` (a
string or up to 4), ``seed`` (an integer), ``logprobs`` / ``top_logprobs`` 0..20 (needs logprobs),
``logit_bias`` (token-id strings to -100..100), ``stream`` / ``stream_options`` (only with stream),
``user``, ``metadata``, ``store``, ``modalities`` (text only), ``tools`` / ``tool_choice`` /
``parallel_tool_calls`` and ``functions`` / ``function_call`` (tools.py), ``response_format``
(structured.py). Fields the simulator does not know are accepted, for forward compatibility.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard_simulator.errors import (
    ApiError,
    array_too_long,
    boolean,
    integer,
    invalid_type,
    invalid_value,
    missing,
    number,
    obj,
    out_of_range,
    string,
)
from modelyard_simulator.messages import Conversation, parse_messages
from modelyard_simulator.structured import ResponseFormat, parse_response_format
from modelyard_simulator.tools import ToolRequest, parse_tools

__all__ = ["ApiError", "ChatRequest", "parse_chat_request"]

MAX_STOP = 4
MAX_N = 128
_INT64 = 2**63


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, once per request
class ChatRequest:
    model: str
    conversation: Conversation
    n: int = 1
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    temperature: float | None = None
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    stream: bool = False
    include_usage: bool = False
    tools: ToolRequest | None = None
    response_format: ResponseFormat | None = None


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise invalid_type("stop", "a string or an array of strings", value)
    if len(value) > MAX_STOP:
        raise array_too_long("stop", len(value), MAX_STOP)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise invalid_type(f"stop[{i}]", "a string", item)
    return tuple(value)


def _logit_bias(body: dict[str, Any]) -> None:
    """Validated only: the simulator's tokens have no ids, so a bias cannot change its text."""
    bias = obj(body, "logit_bias")
    for token, value in (bias or {}).items():
        if not token.isdigit():
            raise invalid_value("logit_bias", f"invalid key {token!r}: keys are token ids (non-negative integers).")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise invalid_type(f"logit_bias.{token}", "a number", value)
        if (error := out_of_range("logit_bias", value, -100, 100)) is not None:
            raise error


_OTHER_FIELDS = frozenset({"user", "store", "service_tier", "reasoning_effort", "metadata", "modalities"})


def _other_fields(body: dict[str, Any]) -> None:
    """Fields without an effect on the answer that OpenAI still type-checks."""
    string(body, "user")
    boolean(body, "store")
    string(body, "service_tier")
    string(body, "reasoning_effort")
    metadata = obj(body, "metadata")
    for key, value in (metadata or {}).items():
        if not isinstance(value, str):
            raise invalid_type(f"metadata.{key}", "a string", value)
    modalities = body.get("modalities")
    if modalities is not None:
        if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
            raise invalid_type("modalities", "an array of strings", modalities)
        if any(m != "text" for m in modalities):
            raise invalid_value("modalities", "the simulated models produce text only.")


def parse_chat_request(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise missing("model")
    conversation = parse_messages(body.get("messages"))
    if len(body) == 2:  # model and messages only: the common case, nothing else to check
        return ChatRequest(model, conversation)
    temperature = number(body, "temperature", 0, 2)
    number(body, "top_p", 0, 1)
    number(body, "presence_penalty", -2, 2)
    number(body, "frequency_penalty", -2, 2)
    n = integer(body, "n", 1, MAX_N) or 1
    max_tokens = integer(body, "max_completion_tokens", 1, 1_000_000)
    if max_tokens is None:
        max_tokens = integer(body, "max_tokens", 1, 1_000_000)
    logprobs = boolean(body, "logprobs") or False
    top_logprobs = integer(body, "top_logprobs", 0, 20)
    if top_logprobs is not None and not logprobs:
        raise invalid_value("top_logprobs", "'logprobs' must be set to true when 'top_logprobs' is used.")
    stream = boolean(body, "stream") or False
    options = obj(body, "stream_options")
    if options is not None and not stream:
        raise ApiError(
            400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    include_usage = bool(options and boolean(options, "include_usage", "stream_options.include_usage"))
    seed = integer(body, "seed", -_INT64, _INT64 - 1)
    stop = _stop(body)
    if "logit_bias" in body:
        _logit_bias(body)
    if not _OTHER_FIELDS.isdisjoint(body):
        _other_fields(body)
    return ChatRequest(
        model=model,
        conversation=conversation,
        n=n,
        max_tokens=max_tokens,
        stop=stop,
        temperature=temperature,
        seed=seed,
        logprobs=logprobs,
        top_logprobs=top_logprobs or 0,
        stream=stream,
        include_usage=include_usage,
        tools=parse_tools(body),
        response_format=parse_response_format(body, conversation.mentions_json),
    )
