"""Structured output: JSON objects, JSON that validates against the request's schema, OpenAI's schema
rules, and the knob that makes a share of answers defective (in-process ASGI, official openai SDK)."""

from __future__ import annotations

import json
from typing import Literal

import jsonschema
import openai
import pydantic
import pytest

TICKET_SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "minLength": 5},
        "priority": {"type": "string", "enum": ["low", "medium", "high"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 4, "uniqueItems": True},
        "estimate_hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 40},
        "due": {"type": "string", "format": "date-time"},
        "assignee": {"anyOf": [{"type": "null"}, {"type": "string", "format": "email"}]},
    },
    "required": ["summary", "priority", "tags", "estimate_hours", "due", "assignee"],
    "additionalProperties": False,
}
QUESTION = "Summarise this ticket as JSON: the VPN drops every hour for the sales team in Lyon."


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def schema_format(schema: dict, strict: bool = True) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "ticket", "schema": schema, "strict": strict}}


async def test_json_object_answers_a_json_object(simulator) -> None:
    sdk, _ = simulator()
    reply = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(QUESTION), response_format={"type": "json_object"})
    document = json.loads(reply.choices[0].message.content)
    assert isinstance(document, dict) and "ticket" in document["answer"].lower()


async def test_json_schema_answers_validate_for_many_prompts_and_choices(simulator) -> None:
    sdk, _ = simulator()
    for i in range(15):
        reply = await sdk.chat.completions.create(
            model="gpt-4o", messages=user(f"{QUESTION} Case {i}."), response_format=schema_format(TICKET_SCHEMA), n=3
        )
        for choice in reply.choices:
            jsonschema.Draft202012Validator(TICKET_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
                json.loads(choice.message.content)
            )


class Step(pydantic.BaseModel):
    operation: Literal["add", "subtract", "multiply"]
    result: int


class Solution(pydantic.BaseModel):
    steps: list[Step]
    reasoning: str
    answer: int


async def test_the_sdk_parses_a_pydantic_model_and_the_final_answer_lands_in_answer(simulator) -> None:
    sdk, _ = simulator()
    question = "Tom has 12 apples and buys 30 more, then gives away 7. How many apples does he have now?"
    reply = await sdk.chat.completions.with_raw_response.parse(
        model="gpt-4o", messages=user(question), response_format=Solution
    )
    parsed = reply.parse().choices[0].message.parsed
    assert isinstance(parsed, Solution) and parsed.steps
    right = int(reply.headers["x-simulator-correct-answer"])
    assert parsed.answer == right if reply.headers["x-simulator-right"] == "1" else parsed.answer != right


async def test_structured_output_streams_the_same_json(simulator) -> None:
    sdk, _ = simulator()
    ask = dict(model="gpt-4o", messages=user(QUESTION), response_format=schema_format(TICKET_SCHEMA), seed=11)
    plain = await sdk.chat.completions.create(**ask)
    text = ""
    async for chunk in await sdk.chat.completions.create(**ask, stream=True):
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == plain.choices[0].message.content and json.loads(text)


async def test_invalid_json_knob_makes_that_share_unparsable_or_invalid(simulator) -> None:
    sdk, raw = simulator(models={"gpt-4o-mini": {"invalid_json_rate": 0.4}})
    validator = jsonschema.Draft202012Validator(TICKET_SCHEMA)
    outcomes = {"valid": 0, "unparsable": 0, "schema": 0}
    for i in range(150):
        reply = await sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=user(f"{QUESTION} Case {i}."), response_format=schema_format(TICKET_SCHEMA)
        )
        try:
            document = json.loads(reply.parse().choices[0].message.content)
        except json.JSONDecodeError:
            outcome = "unparsable"
        else:
            outcome = "valid" if validator.is_valid(document) else "schema"
        outcomes[outcome] += 1
        assert reply.headers.get("x-simulator-defects", "none") == ("none" if outcome == "valid" else outcome)
    assert 60 <= outcomes["valid"] <= 120 and outcomes["unparsable"] >= 12 and outcomes["schema"] >= 12
    assert (await raw.get("/admin/stats")).json()["models"]["gpt-4o-mini"]["defective"] == 150 - outcomes["valid"]


BAD_FORMATS = [
    ({"type": "json_schema"}, "response_format.json_schema", "missing_required_parameter"),
    ({"type": "json_schema", "json_schema": {"schema": TICKET_SCHEMA}}, "response_format.json_schema.name", "missing_required_parameter"),
    ({"type": "json_schema", "json_schema": {"name": "a b", "schema": TICKET_SCHEMA}}, "response_format.json_schema.name", "invalid_value"),
    (schema_format({"type": "object", "properties": {"a": {"type": "integer"}}}), "response_format", "invalid_json_schema"),
    (schema_format({"type": "array", "items": {"type": "string"}}), "response_format", "invalid_json_schema"),
    (schema_format({"type": "object", "required": "a"}, strict=False), "response_format", "invalid_json_schema"),
    ({"type": "json_schema", "json_schema": {"name": "t", "schema": TICKET_SCHEMA, "strict": "yes"}}, "response_format.json_schema.strict", "invalid_type"),
]


@pytest.mark.parametrize(("response_format", "param", "code"), BAD_FORMATS)
async def test_response_formats_openai_refuses(simulator, response_format, param, code) -> None:
    _, raw = simulator()
    body = {"model": "gpt-4o", "messages": user(QUESTION), "response_format": response_format}
    response = await raw.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["param"], response.json()["error"]["code"]) == (param, code)


async def test_json_object_needs_the_word_json_in_the_messages(simulator) -> None:
    sdk, _ = simulator()
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(
            model="gpt-4o", messages=user("Summarise the VPN ticket"), response_format={"type": "json_object"}
        )
    assert caught.value.param == "messages" and "'json'" in caught.value.body["message"]
    loose = await sdk.chat.completions.create(
        model="gpt-4o", messages=user("Summarise the VPN ticket"), response_format=schema_format({"type": "array"}, False)
    )
    assert isinstance(json.loads(loose.choices[0].message.content), list)
