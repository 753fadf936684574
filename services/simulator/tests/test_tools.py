"""Tools: plausible calls whose arguments validate against the offered schema, OpenAI's validation, the
streamed deltas, and the invalid-arguments knob (in-process ASGI, through the official openai SDK)."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from simulator_samples import SCHEMAS, TOOLS, WEATHER

def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def assert_valid(call) -> dict:
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, SCHEMAS[call.function.name])
    return arguments


async def test_auto_calls_the_matching_tool_with_schema_valid_arguments(simulator) -> None:
    sdk, _ = simulator()
    reply = await sdk.chat.completions.create(model="gpt-4o", messages=user("What's the weather in Paris?"), tools=TOOLS)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
    arguments = assert_valid(call)
    assert arguments["city"] == "paris" and arguments["unit"] in ("celsius", "fahrenheit")
    assert reply.usage.completion_tokens >= len(call.function.arguments) // 8


async def test_auto_answers_in_text_when_no_tool_fits_and_none_never_calls(simulator) -> None:
    sdk, _ = simulator()
    unrelated = await sdk.chat.completions.create(model="gpt-4o", messages=user("Tell me a joke about cats"), tools=TOOLS)
    assert unrelated.choices[0].finish_reason == "stop" and unrelated.choices[0].message.tool_calls is None
    none = await sdk.chat.completions.create(
        model="gpt-4o", messages=user("What's the weather in Paris?"), tools=TOOLS, tool_choice="none"
    )
    assert none.choices[0].message.content and not none.choices[0].message.tool_calls


async def test_required_and_named_choices(simulator) -> None:
    sdk, _ = simulator()
    required = await sdk.chat.completions.create(
        model="gpt-4o-mini", messages=user("Tell me a joke about cats"), tools=TOOLS, tool_choice="required"
    )
    assert required.choices[0].finish_reason == "tool_calls" and len(required.choices[0].message.tool_calls) == 1
    named = await sdk.chat.completions.create(
        model="gpt-4o",
        messages=user("What's the weather in Paris?"),
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "issue_refund"}},
    )
    [call] = named.choices[0].message.tool_calls
    arguments = assert_valid(call)
    assert call.function.name == "issue_refund" and set(arguments) == set(SCHEMAS["issue_refund"]["required"])
    assert arguments["contact"]["email"].endswith("@example.com") and len(arguments["requested_on"]) == 10


async def test_parallel_calls_only_when_allowed(simulator) -> None:
    sdk, _ = simulator()
    both = "Refund my order 88 because the weather forecast for Paris was wrong"
    parallel = await sdk.chat.completions.create(model="gpt-4o", messages=user(both), tools=TOOLS)
    calls = parallel.choices[0].message.tool_calls
    assert {c.function.name for c in calls} == {"get_weather", "issue_refund"}
    assert len({c.id for c in calls}) == 2 and all(assert_valid(c) is not None for c in calls)
    single = await sdk.chat.completions.create(model="gpt-4o", messages=user(both), tools=TOOLS, parallel_tool_calls=False)
    assert len(single.choices[0].message.tool_calls) == 1


async def test_the_tool_result_leads_to_a_text_answer(simulator) -> None:
    sdk, _ = simulator()
    first = await sdk.chat.completions.create(model="gpt-4o", messages=user("What's the weather in Paris?"), tools=TOOLS)
    message = first.choices[0].message
    conversation = [
        *user("What's the weather in Paris?"),
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": '{"temperature": 21, "sky": "clear"}'},
    ]
    second = await sdk.chat.completions.create(model="gpt-4o", messages=conversation, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop" and '"sky": "clear"' in second.choices[0].message.content


async def test_streamed_tool_calls_accumulate_to_the_same_calls(simulator) -> None:
    sdk, _ = simulator()
    ask = dict(model="gpt-4o", messages=user("Refund order 88 and check the weather in Rome"), tools=TOOLS, seed=3)
    plain = await sdk.chat.completions.create(**ask)
    async with sdk.chat.completions.stream(**ask) as stream:
        final = await stream.get_final_completion()
    headers = []
    raw = await sdk.chat.completions.create(**ask, stream=True)
    async for chunk in raw:
        for choice in chunk.choices:
            headers += [d for d in choice.delta.tool_calls or [] if d.id is not None]
    expected = [(c.id, c.function.name, c.function.arguments) for c in plain.choices[0].message.tool_calls]
    assert [(c.id, c.function.name, c.function.arguments) for c in final.choices[0].message.tool_calls] == expected
    assert final.choices[0].finish_reason == "tool_calls"
    assert [(d.index, d.id, d.function.name, d.function.arguments) for d in headers] == [
        (k, call_id, name, "") for k, (call_id, name, _) in enumerate(expected)
    ]


async def test_max_tokens_cuts_tool_arguments_with_finish_length(simulator) -> None:
    sdk, _ = simulator()
    reply = await sdk.chat.completions.create(
        model="gpt-4o", messages=user("Refund order 88"), tools=TOOLS, tool_choice="required", max_tokens=8
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "length" and reply.usage.completion_tokens == 8
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice.message.tool_calls[0].function.arguments)


async def test_invalid_arguments_knob_spoils_that_share_of_calls(simulator) -> None:
    _, raw = simulator(models={"gpt-4o-mini": {"invalid_tool_args_rate": 0.5}})
    kinds = {"valid": 0, "unparsable": 0, "schema": 0}
    for i in range(120):
        response = await raw.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": user(f"Refund order {i}"), "tools": TOOLS, "tool_choice": "required"},
        )
        call = response.json()["choices"][0]["message"]["tool_calls"][0]["function"]
        try:
            arguments = json.loads(call["arguments"])
        except json.JSONDecodeError:
            kinds["unparsable"] += 1
            continue
        valid = jsonschema.Draft202012Validator(SCHEMAS[call["name"]]).is_valid(arguments)
        kinds["valid" if valid else "schema"] += 1
        assert response.headers.get("x-simulator-defects", "none") == ("none" if valid else "schema")
    assert 35 <= kinds["valid"] <= 85 and kinds["unparsable"] >= 10 and kinds["schema"] >= 10
    stats = (await raw.get("/admin/stats")).json()["models"]["gpt-4o-mini"]
    assert stats["defective"] == kinds["unparsable"] + kinds["schema"] and stats["tool_calls"] == 120


async def test_deprecated_functions_get_a_function_call(simulator) -> None:
    sdk, _ = simulator()
    functions = [t["function"] for t in TOOLS]
    reply = await sdk.chat.completions.create(
        model="gpt-4o", messages=user("What's the weather in Oslo?"), functions=functions, function_call="auto"
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "function_call" and choice.message.function_call.name == "get_weather"
    jsonschema.validate(json.loads(choice.message.function_call.arguments), SCHEMAS["get_weather"])
    stream = await sdk.chat.completions.create(
        model="gpt-4o", messages=user("What's the weather in Oslo?"), functions=functions, stream=True
    )
    name, arguments = "", ""
    async for chunk in stream:
        for c in chunk.choices:
            if c.delta.function_call:
                name += c.delta.function_call.name or ""
                arguments += c.delta.function_call.arguments or ""
    assert (name, arguments) == (choice.message.function_call.name, choice.message.function_call.arguments)


def tool(name: str = "f", **function: object) -> dict:
    return {"type": "function", "function": {"name": name, **function}}


BAD_TOOL_REQUESTS = [
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "book_flight"}}}, "tool_choice", "invalid_value"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
    ({"tools": []}, "tools", "empty_array"),
    ({"tools": [tool()] * 129}, "tools", "array_above_max_length"),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type", "invalid_value"),
    ({"tools": [tool("has space")]}, "tools[0].function.name", "invalid_value"),
    ({"tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter"),
    ({"tools": [tool(parameters={"type": "string"})]}, "tools[0].function.parameters", "invalid_function_parameters"),
    ({"tools": [tool(parameters={"type": "object", "properties": {"a": {"type": "strng"}}})]}, "tools[0].function.parameters", "invalid_function_parameters"),
    ({"tools": [tool(strict=True, parameters={"type": "object", "properties": {"a": {"type": "string"}}})]}, "tools[0].function.parameters", "invalid_function_parameters"),
    ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls", "invalid_type"),
    ({"tools": [WEATHER], "functions": [WEATHER["function"]]}, "functions", "invalid_value"),
    ({"functions": [WEATHER["function"]], "function_call": {"name": "nope"}}, "function_call", "invalid_value"),
]


@pytest.mark.parametrize(("extra", "param", "code"), BAD_TOOL_REQUESTS)
async def test_tool_requests_openai_refuses(simulator, extra, param, code) -> None:
    _, raw = simulator()
    body = {"model": "gpt-4o", "messages": user("What's the weather?"), **extra}
    response = await raw.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


async def test_strict_schema_errors_say_where(simulator) -> None:
    sdk, _ = simulator()
    loose = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}},
                                                    "required": ["b"]}},
             "required": ["a"], "additionalProperties": False}
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(
            model="gpt-4o", messages=user("x"), tools=[tool(strict=True, parameters=loose)]
        )
    assert caught.value.body["message"] == (
        "Invalid schema for function 'f': In context=('properties', 'a'), 'additionalProperties' is required to be "
        "supplied and to be false."
    )
