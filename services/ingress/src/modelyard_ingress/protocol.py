"""OpenAI's chat-completions wire format, translated: a request into a ``QuerySubmitted``, an outcome
into a response (or an OpenAI-shaped error).

What maps where:

* The last message must be the user's; its text is the query. Earlier messages are its history
  (``developer`` counts as ``system``). Tool and function messages, tools and images cannot be served.
* ``model``: ``auto`` lets the router decide; ``slm``, ``llm``, ``llm_plus`` pin a class; a model of
  the pricing table pins that model (the router ignores a model the tenant's policy does not
  configure, and says so in the decision's reasons).
* ``agent_id``, ``user_role`` and ``agent_type`` are read from the body's extra fields or, failing
  that, from ``metadata``; ``metadata`` itself is carried on the query and echoed on its outcome.
* Sampling parameters (``temperature``, ``max_tokens``, ...) are accepted and ignored: the inference
  pools own them.
* ``usage`` counts the tokens of every model call the query made (a cascaded query made two or
  three); ``modelyard`` says which class and model answered, the cascade chain, confidence and cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import orjson
from modelyard_core.pricing import PricingTable
from modelyard_events import ChatMessage, ModelClass, OutcomeStatus, QueryOutcome, QuerySubmitted, RejectCode
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import OpenAIError, bad_request

AUTO = "auto"
OWNER = "modelyard"


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[TextPart] | None = None

    def text(self, index: int) -> str:
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            raise bad_request(f"messages[{index}] has no content", param=f"messages.{index}.content")
        texts = []
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise bad_request(f"messages[{index}]: content parts of type {part.type!r} are not supported",
                                  param=f"messages.{index}.content", code="unsupported_content")
            texts.append(part.text)
        return "\n".join(texts)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's request that modelyard reads; every other field is accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=128)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    n: int | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    # modelyard's own (OpenAI clients send them with extra_body=...)
    agent_id: str | None = None
    user_role: str | None = None
    agent_type: str | None = None


def resolve_model(model: str, pricing: PricingTable) -> tuple[ModelClass | None, str | None]:
    """``(requested_class, requested_model)`` for the request's ``model``; 404 for a name nobody serves."""
    if model == AUTO:
        return None, None
    if model in ModelClass._value2member_map_:
        return ModelClass(model), None
    if pricing.knows(model):
        return None, model
    raise OpenAIError(404, f"The model `{model}` does not exist or you do not have access to it.",
                      code="model_not_found", param="model", retry=False)


def model_ids(pricing: PricingTable) -> list[str]:
    return [AUTO, *(c.value for c in ModelClass), *pricing.models]


def model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": OWNER}


_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def _history(messages: list[Message]) -> list[ChatMessage]:
    history = []
    for i, m in enumerate(messages):
        role = _ROLES.get(m.role)
        if role is None:
            raise bad_request(f"messages[{i}]: role {m.role!r} is not supported (no tools or functions)",
                              param=f"messages.{i}.role", code="unsupported_role")
        history.append(ChatMessage(role=role, content=m.text(i)))
    return history


def to_submitted(body: ChatCompletionRequest, *, tenant_id: str, query_id: str, pricing: PricingTable) -> QuerySubmitted:
    """The query event for a chat request, or an ``OpenAIError`` (400/404) saying what cannot be served."""
    if body.n not in (None, 1):
        raise bad_request("only n=1 is supported", param="n", code="unsupported_value")
    if body.tools or body.functions:
        raise bad_request("tools and functions are not supported", param="tools" if body.tools else "functions",
                          code="unsupported_parameter")
    *earlier, last = body.messages
    if last.role != "user":
        raise bad_request("the last message must be the user's", param=f"messages.{len(body.messages) - 1}.role")
    requested_class, requested_model = resolve_model(body.model, pricing)
    metadata = dict(body.metadata or {})
    if body.user and "user" not in metadata:
        metadata["user"] = body.user
    try:
        return QuerySubmitted(
            tenant_id=tenant_id,
            query_id=query_id,
            text=last.text(len(body.messages) - 1),
            history=_history(earlier),
            agent_id=body.agent_id or metadata.get("agent_id"),
            user_role=body.user_role or metadata.get("user_role"),
            agent_type=body.agent_type or metadata.get("agent_type"),
            requested_class=requested_class,
            requested_model=requested_model,
            metadata=metadata,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ()))
        param = {"text": f"messages.{len(body.messages) - 1}.content", "history": "messages"}.get(field.split(".")[0], field)
        raise bad_request(f"{param}: {err.get('msg')}", param=param) from None


# --------------------------------------------------------------------------------------------------
# Outcomes


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


def completion(o: QueryOutcome, *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": completion_id(o.query_id),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": o.model or "",
        "system_fingerprint": None,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": o.answer or "", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": usage(o),
        "modelyard": modelyard_extension(o),
    }


def stream_events(o: QueryOutcome, *, include_usage: bool, created: int | None = None) -> Iterator[bytes]:
    """``stream: true``: the whole answer in one chunk (the outcome arrives whole), then ``[DONE]``."""
    base = {
        "id": completion_id(o.query_id),
        "object": "chat.completion.chunk",
        "created": created if created is not None else int(time.time()),
        "model": o.model or "",
        "system_fingerprint": None,
    }
    extra: dict[str, Any] = {"usage": None} if include_usage else {}
    final = {
        **base,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": o.answer or ""}, "logprobs": None, "finish_reason": "stop"}],
        **extra,
        "modelyard": modelyard_extension(o),
    }
    yield b"data: " + orjson.dumps(final) + b"\n\n"
    if include_usage:
        yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage(o)}) + b"\n\n"
    yield b"data: [DONE]\n\n"


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
    return OpenAIError(502, o.reason or "every model call failed", type="server_error", code="model_failed", **common)


def timeout_error(query_id: str, timeout_s: float) -> OpenAIError:
    return OpenAIError(
        504,
        f"no outcome for query {query_id} within {timeout_s:g} s; it may still complete, and is metered if it does",
        type="timeout", code="timeout", query_id=query_id, retry=False,
    )

