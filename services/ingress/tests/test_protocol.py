"""The OpenAI wire format: requests into query events, outcomes into responses and errors."""

from __future__ import annotations

import json

import pytest
from modelyard_core.pricing import load_pricing
from modelyard_events import CascadeStep, ModelClass, OutcomeStatus, QueryOutcome, RejectCode
from modelyard_ingress.errors import OpenAIError
from modelyard_ingress.protocol import ChatCompletionRequest, completion, model_ids, outcome_error, stream_events, to_submitted
from openai.types.chat import ChatCompletion, ChatCompletionChunk

PRICING = load_pricing()


def submitted(**body):
    body.setdefault("model", "auto")
    body.setdefault("messages", [{"role": "user", "content": "How do I reset my password?"}])
    return to_submitted(ChatCompletionRequest.model_validate(body), tenant_id="acme", query_id="q-1", pricing=PRICING)


def error_of(**body) -> OpenAIError:
    with pytest.raises(OpenAIError) as info:
        submitted(**body)
    return info.value


def test_last_user_message_is_the_query_and_earlier_ones_its_history():
    q = submitted(messages=[
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": [{"type": "text", "text": "My VPN"}, {"type": "text", "text": "drops every hour."}]},
    ])
    assert q.tenant_id == "acme" and q.query_id == "q-1"
    assert q.text == "My VPN\ndrops every hour."
    assert [(m.role, m.content) for m in q.history] == [
        ("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello, how can I help?")]


@pytest.mark.parametrize(("model", "cls", "pinned"), [
    ("auto", None, None),
    ("slm", ModelClass.SLM, None),
    ("llm_plus", ModelClass.LLM_PLUS, None),
    ("gpt-4o", None, "gpt-4o"),
])
def test_model_auto_lets_the_router_decide_and_anything_else_pins(model, cls, pinned):
    q = submitted(model=model)
    assert (q.requested_class, q.requested_model) == (cls, pinned)


def test_unknown_model_is_404_model_not_found():
    err = error_of(model="gpt-17-ultra")
    assert err.status == 404 and err.code == "model_not_found" and err.param == "model"


def test_agent_and_role_come_from_extra_fields_before_metadata():
    q = submitted(metadata={"agent_id": "agent-meta", "user_role": "engineer", "ticket": "T-9"}, agent_id="agent-body", user="u-42")
    assert q.agent_id == "agent-body" and q.user_role == "engineer"
    assert q.metadata == {"agent_id": "agent-meta", "user_role": "engineer", "ticket": "T-9", "user": "u-42"}


def test_a_tenant_named_in_the_body_is_ignored():
    assert submitted(tenant_id="someone-else").tenant_id == "acme"


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, "messages.1.role"),
    ({"messages": [{"role": "tool", "content": "x"}, {"role": "user", "content": "a"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]}, "messages.0.content"),
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"messages": [{"role": "user", "content": "x" * 40_000}]}, "messages.0.content"),
])
def test_what_cannot_be_served_is_a_400_naming_the_parameter(body, param):
    err = error_of(**body)
    assert err.status == 400 and err.param == param
    assert err.body()["error"]["type"] == "invalid_request_error"
    assert err.headers["x-should-retry"] == "false"


def outcome(**fields) -> QueryOutcome:
    base = dict(tenant_id="acme", query_id="q-1", status=OutcomeStatus.COMPLETED)
    return QueryOutcome(**{**base, **fields})


def answered() -> QueryOutcome:
    steps = [
        CascadeStep(model_class=ModelClass.SLM, model="gpt-4o-mini", confidence=0.4, input_tokens=10, output_tokens=20, cost_usd=0.001),
        CascadeStep(model_class=ModelClass.LLM, model="gpt-4o", confidence=0.9, input_tokens=10, output_tokens=30, cost_usd=0.01),
    ]
    return outcome(answer="Restart the router.", model_class=ModelClass.LLM, model="gpt-4o", confidence=0.9,
                   cascade=steps, input_tokens=20, output_tokens=50, cost_usd=0.011)


def test_a_completed_outcome_is_an_openai_chat_completion_with_modelyard_details():
    doc = completion(answered())
    parsed = ChatCompletion.model_validate(doc)  # the official client's own model of the response
    assert parsed.choices[0].message.content == "Restart the router."
    assert parsed.model == "gpt-4o" and parsed.id == "chatcmpl-q-1"
    assert parsed.usage is not None and (parsed.usage.prompt_tokens, parsed.usage.completion_tokens, parsed.usage.total_tokens) == (20, 50, 70)
    extra = doc["modelyard"]
    assert extra["model_class"] == "llm" and extra["escalated"] is True and extra["cost_usd"] == 0.011
    assert [s["model"] for s in extra["cascade"]] == ["gpt-4o-mini", "gpt-4o"]
    assert outcome_error(answered()) is None


def test_stream_is_one_final_chunk_then_done():
    events = list(stream_events(answered(), include_usage=True))
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = [ChatCompletionChunk.model_validate(json.loads(e.removeprefix(b"data: "))) for e in events[:-1]]
    assert chunks[0].choices[0].delta.content == "Restart the router." and chunks[0].choices[0].finish_reason == "stop"
    assert chunks[1].choices == [] and chunks[1].usage is not None and chunks[1].usage.total_tokens == 70


@pytest.mark.parametrize(("code", "status", "kind"), [
    (RejectCode.QUOTA, 429, "insufficient_quota"),
    (RejectCode.SUSPENDED, 403, "permission_error"),
    (RejectCode.POLICY, 403, "permission_error"),
    (RejectCode.UNKNOWN_TENANT, 403, "permission_error"),
])
def test_rejections_are_429_for_quota_and_403_otherwise(code, status, kind):
    err = outcome_error(outcome(status=OutcomeStatus.REJECTED, reject_code=code, reason="because"))
    assert err is not None and err.status == status
    body = err.body()["error"]
    assert body["type"] == kind and body["code"] == code.value and body["message"] == "because" and body["query_id"] == "q-1"
    assert err.headers["x-should-retry"] == "false"  # a retry would be a new, separately admitted query


def test_a_rate_limited_query_is_429_with_retry_after():
    err = outcome_error(outcome(status=OutcomeStatus.REJECTED, reject_code=RejectCode.RATE_LIMITED, retry_after_s=16.2,
                                reason="rate limit of 3 requests per minute (basic tier) exceeded"))
    assert err is not None and err.status == 429 and err.headers["Retry-After"] == "17"
    body = err.body()["error"]
    assert (body["type"], body["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert body["message"] == "rate limit of 3 requests per minute (basic tier) exceeded; retry after 17 s"
    assert err.headers["x-should-retry"] == "true"  # nothing was metered: the same request may come again


def test_failed_is_502():
    err = outcome_error(outcome(status=OutcomeStatus.FAILED, reason="every model call failed (gpt-4o-mini: 503)"))
    assert err is not None and err.status == 502 and err.body()["error"]["code"] == "model_failed"


def test_models_list_offers_auto_the_classes_and_every_priced_model():
    ids = model_ids(PRICING)
    assert ids[:4] == ["auto", "slm", "llm", "llm_plus"] and set(PRICING.models) <= set(ids)
