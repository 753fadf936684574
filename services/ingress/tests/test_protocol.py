"""The OpenAI wire format: requests into query events (conversation, generation parameters), outcomes into
responses and errors. The official client's own response models (``ChatCompletion``) check the shapes."""

from __future__ import annotations

import pytest
from modelyard_core.pricing import load_pricing
from modelyard_events import Choice, CascadeStep, ModelClass, ModelError, OutcomeStatus, QueryOutcome, RejectCode, StreamTo
from modelyard_ingress.errors import OpenAIError
from modelyard_ingress.protocol import GENERATION_FIELDS, ChatCompletionRequest, model_ids, to_submitted
from modelyard_ingress.responses import completion, outcome_error
from openai.types.chat import ChatCompletion
from pydantic import ValidationError

PRICING = load_pricing()


def submitted(stream_to: StreamTo | None = None, **body):
    body.setdefault("model", "auto")
    body.setdefault("messages", [{"role": "user", "content": "How do I reset my password?"}])
    return to_submitted(ChatCompletionRequest.model_validate(body), tenant_id="acme", query_id="q-1", pricing=PRICING,
                        stream_to=stream_to)


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


TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city",
                                         "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                        "required": ["city"]}}}

EVERY_PARAMETER = {
    "temperature": 0.0, "top_p": 0.5, "max_tokens": 50, "max_completion_tokens": 60, "stop": ["\n\n", "END"], "seed": 7,
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "logit_bias": {"50256": -100}, "logprobs": True,
    "top_logprobs": 3, "n": 2, "response_format": {"type": "json_object"}, "tools": [TOOL], "tool_choice": "auto",
    "parallel_tool_calls": False, "user": "end-user-42", "reasoning_effort": "low",
}


def test_every_generation_parameter_travels_on_the_query_unchanged():
    q = submitted(**EVERY_PARAMETER)
    assert q.generation is not None and q.generation.body() == EVERY_PARAMETER
    assert set(EVERY_PARAMETER) | {"functions", "function_call"} == set(GENERATION_FIELDS)
    legacy = submitted(functions=[TOOL["function"]], function_call={"name": "get_weather"})
    assert legacy.generation.body() == {"functions": [TOOL["function"]], "function_call": {"name": "get_weather"}}
    # The event round-trips through JSON (what the bus carries) with the parameters intact.
    assert type(q).model_validate_json(q.model_dump_json()).generation == q.generation


def test_a_request_without_parameters_carries_none_and_unknown_fields_are_ignored():
    q = submitted(store=True, prediction={"type": "content", "content": "x"}, top_k=5)
    assert q.generation is None and "top_k" not in q.model_dump_json()


def test_stream_to_is_set_only_for_streamed_requests():
    target = StreamTo(partition=2, instance="ingress-a")
    assert submitted(stream=True, stream_to=target).stream_to == target
    assert submitted(stream=False, stream_to=target).stream_to is None


@pytest.mark.parametrize(("field", "value"), [
    ("temperature", 2.5), ("top_p", -0.1), ("max_tokens", 0), ("n", 0), ("n", 129), ("stop", ["a", "b", "c", "d", "e"]),
    ("presence_penalty", 3), ("logit_bias", {"1": 101}), ("top_logprobs", 21), ("seed", "seven"), ("tools", "none"),
])
def test_out_of_range_parameters_are_refused_naming_the_field(field, value):
    with pytest.raises(ValidationError) as info:  # FastAPI answers it as a 400 naming the field (test_http)
        ChatCompletionRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": "x"}], field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_a_tool_conversation_travels_whole_and_its_last_user_message_is_the_query():
    turns = [
        {"role": "developer", "content": "Use the tools."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature_c": 12}'},
    ]
    q = submitted(messages=turns, tools=[TOOL])
    assert q.text == "What is the weather in Paris?" and q.history == []
    assert q.messages == turns  # as the caller wrote them (developer stays developer, content null stays null)


def test_image_parts_travel_whole_and_a_pinned_model_without_vision_is_a_400_naming_the_part():
    image = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}
    turns = [{"role": "user", "content": [{"type": "text", "text": "What is in the picture?"}, image]}]
    q = submitted(messages=turns)
    assert q.text == "What is in the picture?" and q.messages == turns
    assert submitted(model="gpt-4o", messages=turns).requested_model == "gpt-4o"
    err = error_of(model="llama-3.1-8b-instruct", messages=turns)
    assert err.status == 400 and err.param == "messages[0].content[1].type" and "image_url" in err.message
    only_image = submitted(messages=[{"role": "user", "content": [image]}])
    assert only_image.text == "(an image without text)"


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "critic", "content": "a"}, {"role": "user", "content": "b"}]}, "messages.0.role"),
    ({"messages": [{"role": "system", "content": "a"}, {"role": "tool", "tool_call_id": "c", "content": "x"}]}, "messages.1.role"),
    ({"messages": [{"role": "user", "content": "x" * 40_000}]}, "messages.0.content"),
])
def test_what_cannot_be_served_is_a_400_naming_the_parameter(body, param):
    err = error_of(**body)
    assert err.status == 400 and err.param == param
    assert err.body()["error"]["type"] == "invalid_request_error"
    assert err.headers["x-should-retry"] == "false"


def test_a_conversation_ending_with_the_assistant_is_passed_on_for_the_model_to_judge():
    q = submitted(messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    assert q.text == "a" and q.messages == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]


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


def test_choices_with_tool_calls_n_and_finish_reasons_are_the_models_own():
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    o = outcome(answer="", model_class=ModelClass.SLM, model="gpt-4o-mini", choices=[
        Choice(index=0, content=None, tool_calls=[call], finish_reason="tool_calls"),
        Choice(index=1, content="It is cut sh", finish_reason="length"),
    ])
    parsed = ChatCompletion.model_validate(completion(o))
    assert [c.finish_reason for c in parsed.choices] == ["tool_calls", "length"]
    assert parsed.choices[0].message.tool_calls[0].function.arguments == '{"city": "Paris"}'
    assert parsed.choices[0].message.content is None and parsed.choices[1].message.content == "It is cut sh"


def test_an_outcome_without_choices_is_one_text_choice_that_stopped():
    [choice] = ChatCompletion.model_validate(completion(answered())).choices
    assert choice.index == 0 and choice.finish_reason == "stop" and choice.message.tool_calls is None


def test_the_models_refusal_of_a_request_is_its_own_status_and_error_not_a_502():
    err = outcome_error(outcome(status=OutcomeStatus.FAILED, reason="gpt-4o-mini refused the request", error=ModelError(
        status=400, message="Invalid value for 'tool_choice'", type="invalid_request_error", code="invalid_value",
        param="tool_choice")))
    assert err is not None and err.status == 400
    body = err.body()["error"]
    assert (body["param"], body["code"], body["type"], body["query_id"]) == ("tool_choice", "invalid_value", "invalid_request_error", "q-1")


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
