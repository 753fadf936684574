"""``stream: true``: a query's answer as OpenAI's server-sent events, live where the route allows it.

Two sources, one renderer:

* **Live** — when the query's route is final (the LLM pool, a pinned class or model, a policy without
  escalation), the inference worker streams the model's deltas to this instance's partition of
  ``queries.streams`` as ``QueryChunk`` batches; each batch becomes chunks at once.
* **Held** — an SLM answer that may still be escalated is not streamed while the cascade judges it; it
  arrives whole on the outcome and is sent then.

Either way the query's ``QueryOutcome`` ends the stream: it is the whole answer, so the renderer sends
whatever the caller has not had yet (nothing after a complete live stream, everything for a held
answer, the rest after a batch went missing), then each choice's finish chunk, the usage chunk when
``stream_options.include_usage`` asked for it, and ``data: [DONE]``. The last chunk carries the
``modelyard`` object. A batch from another run of the model call (the worker restarted) or after a
gap is not sent: the outcome completes the stream. If what was sent cannot be completed (it is not a
prefix of the outcome's answer, or the call failed after its first tokens), the stream ends with an
``error`` event, which the OpenAI clients raise as ``APIError``.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from modelyard_events import Assembly, Choice, ChoiceBuilder, QueryChunk, QueryOutcome

from .errors import OpenAIError
from .responses import choices_of, completion_id, modelyard_extension, outcome_error, usage

DONE = b"data: [DONE]\n\n"


def sse(doc: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def error_event(error: OpenAIError) -> bytes:
    return sse(error.body())


def _rest(sent: str, final: str | None) -> str | None:
    """What remains of ``final`` after ``sent``; None when ``sent`` is not where ``final`` begins."""
    final = final or ""
    return final[len(sent):] if final.startswith(sent) else None


def remainder(sent: ChoiceBuilder | None, final: Choice) -> dict[str, Any] | None:
    """The delta that completes what a caller has of a choice, or None when it cannot be completed."""
    delta: dict[str, Any] = {}
    content = _rest(sent.text if sent else "", final.content)
    refusal = _rest("".join(sent.refusal) if sent else "", final.refusal)
    if content is None or refusal is None:
        return None
    if content:
        delta["content"] = content
    if refusal:
        delta["refusal"] = refusal
    calls = []
    for j, call in enumerate(final.tool_calls or ()):
        function = call.get("function") or {}
        have = sent.tool_calls.get(j) if sent else None
        if have is None:
            calls.append({"index": j, "id": call.get("id"), "type": call.get("type", "function"),
                          "function": {"name": function.get("name", ""), "arguments": function.get("arguments", "")}})
            continue
        arguments = _rest("".join(have.arguments), function.get("arguments"))
        if arguments is None or have.name != function.get("name", ""):
            return None
        if arguments:
            calls.append({"index": j, "function": {"arguments": arguments}})
    if calls:
        delta["tool_calls"] = calls
    if final.function_call is not None:
        begun = sent is not None and sent.function_arguments is not None
        arguments = _rest("".join(sent.function_arguments or ()) if begun else "", final.function_call.get("arguments"))
        if arguments is None:
            return None
        if not begun:
            delta["function_call"] = {"name": final.function_call.get("name", ""), "arguments": arguments}
        elif arguments:
            delta["function_call"] = {"arguments": arguments}
    return delta


class StreamRenderer:
    """The chunks of one streamed query, for one caller."""

    def __init__(self, query_id: str, *, include_usage: bool, created: int | None = None) -> None:
        self.base: dict[str, Any] = {
            "id": completion_id(query_id),
            "object": "chat.completion.chunk",
            "created": created if created is not None else int(time.time()),
            "model": "",
            "system_fingerprint": None,
        }
        self.include_usage = include_usage
        self.sent = Assembly()  # what the caller has of each choice
        self.live = True
        self.run: str | None = None
        self.next_seq = 0

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        doc = {**self.base, "choices": choices}
        if self.include_usage:
            doc["usage"] = None
        doc.update(extra)
        return sse(doc)

    def _delta(self, index: int, delta: dict[str, Any], logprobs: Any = None) -> bytes:
        """A content chunk of one choice (its first says the role, as OpenAI's does)."""
        if index not in self.sent.builders:
            self.sent.builder(index)
            delta = {"role": "assistant", **({"content": ""} if not delta else {}), **delta}
        return self._chunk([{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": None}])

    def chunk(self, batch: QueryChunk) -> bytes:
        """The chunks of one live batch (b"" when it must not be sent)."""
        if not self.live:
            return b""
        if self.run is None:
            self.run = batch.run
        if batch.run != self.run or batch.seq < self.next_seq:
            return b""  # another run of the call, or a batch already sent
        if batch.seq > self.next_seq:
            self.live = False  # a batch went missing: the outcome completes the stream
            return b""
        self.next_seq += 1
        self.base["model"] = batch.model
        out = []
        for d in batch.deltas:
            delta = {k: v for k, v in (("content", d.content), ("refusal", d.refusal), ("tool_calls", d.tool_calls),
                                       ("function_call", d.function_call)) if v}
            if delta or d.logprobs:
                out.append(self._delta(d.index, delta, d.logprobs))
            self.sent.add(d)  # its finish reason waits for the outcome: the final chunks carry them
        return b"".join(out)

    def finish(self, outcome: QueryOutcome) -> bytes:
        """Whatever the caller lacks of the answer, the finish chunks, usage, ``[DONE]``; or an error event."""
        error = outcome_error(outcome)
        if error is not None:
            return error_event(error)
        self.base["model"] = outcome.model or self.base["model"]
        out = []
        choices = choices_of(outcome)
        for final in choices:
            builder = self.sent.builders.get(final.index)
            delta = remainder(builder, final)
            if delta is None:
                return b"".join(out) + error_event(OpenAIError(
                    500, "the stream was interrupted (the model call was restarted); the answer is on the outcome",
                    type="server_error", code="stream_interrupted", query_id=outcome.query_id))
            logprobs = None
            if final.logprobs and isinstance(final.logprobs.get("content"), list):
                have = len(builder.logprobs or ()) if builder else 0
                logprobs = {"content": final.logprobs["content"][have:]} if len(final.logprobs["content"]) > have else None
            if delta or logprobs or builder is None:
                out.append(self._delta(final.index, delta, logprobs))
        extension = {"modelyard": modelyard_extension(outcome)}
        for n, final in enumerate(choices):
            last = n == len(choices) - 1 and not self.include_usage
            out.append(self._chunk([{"index": final.index, "delta": {}, "logprobs": None,
                                     "finish_reason": final.finish_reason or "stop"}], **(extension if last else {})))
        if self.include_usage:
            out.append(self._chunk([], usage=usage(outcome), **extension))
        out.append(DONE)
        return b"".join(out)
