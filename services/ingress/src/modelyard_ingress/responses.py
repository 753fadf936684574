"""A query's outcome in OpenAI's terms: a ``chat.completion``, or the OpenAI-shaped error it answers with.

* ``choices`` are the model's own (text, refusal, tool calls, finish reason, log-probabilities when
  asked for); an outcome without ``choices`` is one text choice that finished with ``stop``.
* ``usage`` counts the tokens of every model call the query made (a cascaded query made two or three),
  every choice included.
* ``modelyard`` says which class and model answered, the cascade chain, confidence and cost.
* A model that refused the request answers with its own status and error (a 400 naming the parameter,
  say); a query every model call of which failed otherwise is a 502.
"""

from __future__ import annotations

import math
import time
from typing import Any

from modelyard_events import Choice, OutcomeStatus, QueryOutcome, RejectCode

from .errors import OpenAIError


def modelyard_extension(o: QueryOutcome) -> dict[str, Any]:
    """What modelyard adds to the OpenAI response: which class answered, the cascade, confidence, cost."""
    return {
        "query_id": o.query_id,
        "status": o.status.value,
        "model_class": o.model_class.value if o.model_class else None,
        "model": o.model,
        "complexity": o.complexity.value if o.complexity else None,
        "confidence": o.confidence,
        "escalated": len(o.cascade) > 1,
        "cascade": [
            {
                "model_class": s.model_class.value,
                "model": s.model,
                "confidence": s.confidence,
                "input_tokens": s.input_tokens,
                "output_tokens": s.output_tokens,
                "cost_usd": s.cost_usd,
                "latency_ms": s.latency_ms,
                "error": s.error,
                "reasons": s.reasons,
            }
            for s in o.cascade
        ],
        "cost_usd": o.cost_usd,
        "reason": o.reason,
    }


def usage(o: QueryOutcome) -> dict[str, int]:
    return {"prompt_tokens": o.input_tokens, "completion_tokens": o.output_tokens, "total_tokens": o.input_tokens + o.output_tokens}


def completion_id(query_id: str) -> str:
    return f"chatcmpl-{query_id}"


def choices_of(o: QueryOutcome) -> list[Choice]:
    """The outcome's choices; one text choice finished with ``stop`` when it lists none."""
    return list(o.choices) if o.choices else [Choice(index=0, content=o.answer or "", finish_reason="stop")]


def message(c: Choice) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": c.content, "refusal": c.refusal}
    if c.tool_calls:
        msg["tool_calls"] = c.tool_calls
    if c.function_call is not None:
        msg["function_call"] = c.function_call
    return msg


def completion(o: QueryOutcome, *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": completion_id(o.query_id),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": o.model or "",
        "system_fingerprint": None,
        "choices": [
            {"index": c.index, "message": message(c), "logprobs": c.logprobs, "finish_reason": c.finish_reason or "stop"}
            for c in choices_of(o)
        ],
        "usage": usage(o),
        "modelyard": modelyard_extension(o),
    }


_REJECTIONS: dict[RejectCode, tuple[int, str]] = {
    RejectCode.QUOTA: (429, "insufficient_quota"),
    RejectCode.RATE_LIMITED: (429, "rate_limit_error"),
    RejectCode.POLICY: (403, "permission_error"),
    RejectCode.SUSPENDED: (403, "permission_error"),
    RejectCode.UNKNOWN_TENANT: (403, "permission_error"),
}


def outcome_error(o: QueryOutcome) -> OpenAIError | None:
    """The error a rejected or failed outcome answers with; None for a completed one."""
    if o.status is OutcomeStatus.COMPLETED:
        return None
    common: dict[str, Any] = {"query_id": o.query_id, "retry": False, "modelyard": modelyard_extension(o)}
    if o.status is OutcomeStatus.REJECTED:
        status, kind = _REJECTIONS.get(o.reject_code or RejectCode.POLICY, (403, "permission_error"))
        code = (o.reject_code or RejectCode.POLICY).value
        if o.reject_code is RejectCode.RATE_LIMITED:
            # The router decided it (exactly, across replicas); nothing was metered, so the client may
            # retry once the wait is over.
            wait = math.ceil(o.retry_after_s if o.retry_after_s is not None else 60)
            return OpenAIError(status, f"{o.reason}; retry after {wait} s", type=kind, code="rate_limit_exceeded",
                               headers={"Retry-After": str(wait)}, **{**common, "retry": True})
        return OpenAIError(status, o.reason or f"rejected ({code})", type=kind, code=code, **common)
    if o.error is not None:  # the model refused the request: its status, its words
        e = o.error
        return OpenAIError(e.status, e.message, type=e.type or "invalid_request_error", code=e.code, param=e.param, **common)
    return OpenAIError(502, o.reason or "every model call failed", type="server_error", code="model_failed", **common)


def timeout_error(query_id: str, timeout_s: float) -> OpenAIError:
    return OpenAIError(
        504,
        f"no outcome for query {query_id} within {timeout_s:g} s; it may still complete, and is metered if it does",
        type="timeout", code="timeout", query_id=query_id, retry=False,
    )
