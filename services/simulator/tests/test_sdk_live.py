"""Every feature through the synchronous official openai SDK against a real simulator process over TCP
(the asynchronous SDK covers the same features in-process in the other modules)."""

from __future__ import annotations

import json
import re

import jsonschema
import openai
import pydantic
import pytest

from simulator_samples import SCHEMAS, TOOLS, with_image

#: A real uvicorn process on a free port, started by the module itself: TCP on loopback, no shared server.
pytestmark = pytest.mark.loopback

WORD_PROBLEM = "A baker makes 24 rolls an hour for 6 hours and sells 100 of them. How many rolls are left?"


@pytest.fixture(scope="module")
def sdk(live_simulator):
    with openai.OpenAI(base_url=f"{live_simulator.base_url}/v1", api_key="unused", max_retries=0) as client:
        yield client


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_generation_parameters(sdk: openai.OpenAI) -> None:
    full = sdk.chat.completions.create(model="gpt-4o", messages=user("Where is my parcel?"), seed=5, temperature=0)
    text = full.choices[0].message.content
    again = sdk.chat.completions.create(model="gpt-4o", messages=user("Where is my parcel?"), seed=5, temperature=0)
    assert again.choices[0].message.content == text
    stop_word = text.split()[3]
    stopped = sdk.chat.completions.create(
        model="gpt-4o", messages=user("Where is my parcel?"), seed=5, temperature=0, stop=[stop_word]
    )
    assert stopped.choices[0].message.content == text[: text.index(stop_word)]
    short = sdk.chat.completions.create(model="gpt-4o", messages=user("Where is my parcel?"), max_completion_tokens=2)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 2
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=user("x"), stop=["a", "b", "c", "d", "e"])
    assert caught.value.param == "stop" and caught.value.code == "array_above_max_length"


def test_tools_streamed_and_answered(sdk: openai.OpenAI) -> None:
    ask = user("What's the weather in Lisbon?")
    with sdk.chat.completions.stream(model="gpt-4o", messages=ask, tools=TOOLS) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    [call] = message.tool_calls
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
    answer = sdk.chat.completions.create(
        model="gpt-4o",
        tools=TOOLS,
        messages=[*ask, message.model_dump(exclude_none=True, exclude={"parsed"}),
                  {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"}],
    )
    assert "sunny, 24 C" in answer.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="gpt-4o", messages=ask, tools=TOOLS, tool_choice={
            "type": "function", "function": {"name": "book_flight"}})
    assert caught.value.param == "tool_choice"


class Ticket(pydantic.BaseModel):
    summary: str
    priority: int
    answer: int


def test_structured_output_parsed_and_streamed(sdk: openai.OpenAI) -> None:
    parsed = sdk.chat.completions.parse(model="gpt-4o", messages=user(WORD_PROBLEM), response_format=Ticket)
    assert isinstance(parsed.choices[0].message.parsed, Ticket)
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in sdk.chat.completions.create(
            model="gpt-4o-mini", messages=user("Reply in json: where is my parcel?"),
            response_format={"type": "json_object"}, stream=True,
        )
        if chunk.choices
    )
    assert isinstance(json.loads(text), dict)


def test_n_choices_with_final_answers(sdk: openai.OpenAI) -> None:
    raw = sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=user(WORD_PROBLEM), n=5, temperature=0.7
    )
    reply = raw.parse()
    finals = [int(re.search(r"#### (\d+)$", c.message.content).group(1)) for c in reply.choices]
    right = int(raw.headers["x-simulator-correct-answer"])
    assert [str(int(f == right)) for f in finals] == raw.headers["x-simulator-right"].split(",")
    assert reply.usage.completion_tokens > 5 * 15


def test_images(sdk: openai.OpenAI) -> None:
    seen = sdk.chat.completions.create(model="gpt-4o", messages=with_image())
    assert seen.usage.prompt_tokens > 765
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in sdk.chat.completions.create(model="gpt-4o", messages=with_image(), stream=True)
        if c.choices
    )
    assert streamed == seen.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model="llama-3.1-8b-instruct", messages=with_image())
    assert caught.value.param == "messages[0].content[1].type"
