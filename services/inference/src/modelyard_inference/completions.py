"""The chat-completions wire format, both ways: the body a model call sends, the answer it gets back.

* ``request_body`` — the query's ``Generation`` exactly as the caller set it, plus what the worker needs
  when the caller left it unset: ``max_tokens`` (the pool's ``max_output_tokens``) and ``logprobs``
  (the confidence score reads them; a caller who did not ask for them does not get them back).
* ``parse_completion`` — a ``chat.completion`` document into a ``Completion``: every choice as the model
  returned it (text, refusal, tool calls, finish reason), usage, and each choice's token log-probabilities.
* ``StreamFold`` — the chunks of a streamed call: each one's deltas (what the worker forwards to the
  asker) folded into the same ``Completion`` a non-streamed call gives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from modelyard_events import Assembly, Choice, ChoiceDelta, Generation


class MalformedResponse(ValueError):
    """The backend answered 2xx with something that is not a chat completion."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One completion's text as the answer judge reads it (``answers.consistency.Sample``)."""

    text: str
    finish_reason: str | None
    logprobs: list[float] | None


@dataclass(frozen=True, slots=True)
class Completion:
    """A call's answer. ``text``, ``finish_reason`` and ``logprobs`` are its first choice's; the tokens count
    every choice (the prompt once, as OpenAI bills it)."""

    text: str
    finish_reason: str | None
    input_tokens: int
    output_tokens: int
    logprobs: list[float] | None
    #: the successful attempt only
    latency_ms: float
    attempts: int = 1
    #: every choice as the model returned it (log-probabilities only if the caller asked for them)
    choices: tuple[Choice, ...] = ()
    #: each choice's token log-probabilities, for judging (whoever asked for them)
    choice_logprobs: tuple[list[float] | None, ...] = ()

    @property
    def samples(self) -> tuple[Sample, ...]:
        """Every choice as text to judge (its token log-probabilities with it)."""
        if not self.choices:
            return (Sample(self.text, self.finish_reason, self.logprobs),)
        logprobs = self.choice_logprobs or (None,) * len(self.choices)
        return tuple(Sample(c.content or "", c.finish_reason, lp) for c, lp in zip(self.choices, logprobs, strict=True))

    def with_timing(self, latency_ms: float, attempts: int) -> Completion:
        return Completion(self.text, self.finish_reason, self.input_tokens, self.output_tokens, self.logprobs,
                          latency_ms, attempts, self.choices, self.choice_logprobs)


def request_body(model: str, messages: list[dict[str, Any]], generation: Generation | None, *,
                 max_output_tokens: int, request_logprobs: bool, stream: bool = False) -> dict[str, Any]:
    """The body of one model call: the caller's parameters unchanged, the worker's defaults where unset."""
    body: dict[str, Any] = {"model": model, "messages": messages}
    if generation is not None:
        body.update(generation.body())
    if "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = max_output_tokens
    if request_logprobs and "logprobs" not in body and "top_logprobs" not in body:
        body["logprobs"] = True
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # usage is metered, whatever the caller asked
    return body


def caller_wants_logprobs(generation: Generation | None) -> bool:
    return generation is not None and bool(generation.logprobs)


def _values(logprobs: Any) -> list[float] | None:
    if logprobs and (entries := logprobs.get("content")):
        return [float(e["logprob"]) for e in entries]
    return None


def _choice(doc: dict[str, Any], keep_logprobs: bool) -> Choice:
    message = doc.get("message") or {}
    return Choice(
        index=int(doc.get("index", 0)),
        content=message.get("content"),
        refusal=message.get("refusal"),
        tool_calls=message.get("tool_calls") or None,
        function_call=message.get("function_call"),
        finish_reason=doc.get("finish_reason"),
        logprobs=doc.get("logprobs") if keep_logprobs else None,
    )


def completion_of(choices: list[Choice], logprobs: list[list[float] | None], usage: dict[str, Any]) -> Completion:
    if not choices:
        raise MalformedResponse("no choices")
    first = choices[0]
    return Completion(
        text=first.content or "", finish_reason=first.finish_reason,
        input_tokens=int(usage.get("prompt_tokens") or 0), output_tokens=int(usage.get("completion_tokens") or 0),
        logprobs=logprobs[0], latency_ms=0.0, choices=tuple(choices), choice_logprobs=tuple(logprobs),
    )


def parse_completion(raw: bytes, *, keep_logprobs: bool = False) -> Completion:
    """Every choice (in index order), usage and log-probabilities of a chat completion."""
    try:
        doc = orjson.loads(raw)
        listed = sorted(doc["choices"], key=lambda c: c.get("index", 0))
        return completion_of([_choice(c, keep_logprobs) for c in listed], [_values(c.get("logprobs")) for c in listed],
                             doc.get("usage") or {})
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedResponse(f"{type(exc).__name__}: {exc}"[:200]) from None


_DELTA_FIELDS = ("content", "refusal", "tool_calls", "function_call")


class StreamError(Exception):
    """The model sent an error event in the middle of a stream."""


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """The JSON events of a chat-completions event stream, until ``[DONE]``; an ``error`` event raises."""
    async for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, comments, other fields
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise MalformedResponse(f"stream event: {exc}"[:200]) from None
        if isinstance(event, dict) and event.get("error"):
            raise StreamError(str(event["error"])[:300])
        yield event


class StreamFold:
    """The chunks of one streamed call: ``add`` returns each chunk's deltas; ``completion`` is the whole answer."""

    def __init__(self, *, keep_logprobs: bool) -> None:
        self.keep_logprobs = keep_logprobs
        self.assembly = Assembly()
        self.usage: dict[str, Any] = {}
        self.model: str | None = None

    def add(self, chunk: Any) -> list[ChoiceDelta]:
        try:
            if chunk.get("usage"):
                self.usage = chunk["usage"]
            deltas = []
            for c in chunk.get("choices") or ():
                delta = c.get("delta") or {}
                fields = {k: delta[k] for k in _DELTA_FIELDS if delta.get(k)}
                finish, logprobs = c.get("finish_reason"), c.get("logprobs")
                d = ChoiceDelta(index=int(c.get("index", 0)), finish_reason=finish, logprobs=logprobs, **fields)
                self.assembly.add(d)
                if fields or finish or (self.keep_logprobs and logprobs):
                    if logprobs and not self.keep_logprobs:
                        d = ChoiceDelta(index=d.index, finish_reason=finish, **fields)
                    deltas.append(d)
            return deltas
        except (TypeError, AttributeError, ValueError, KeyError) as exc:
            raise MalformedResponse(f"chunk: {type(exc).__name__}: {exc}"[:200]) from None

    def completion(self) -> Completion:
        choices = self.assembly.choices()
        values = [_values(c.logprobs) for c in choices]
        if not self.keep_logprobs:
            choices = [c.model_copy(update={"logprobs": None}) for c in choices]
        return completion_of(choices, values, self.usage)
