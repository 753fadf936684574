"""Messages validated like OpenAI's: content parts, images for vision models only, tool-call pairing."""

from __future__ import annotations

import openai
import pytest
from simulator_samples import PNG, with_image

async def test_large_models_read_images_and_count_their_tokens(simulator) -> None:
    sdk, _ = simulator()
    words_only = [{"role": "user", "content": with_image()[0]["content"][:1]}]
    text_only = await sdk.chat.completions.create(model="gpt-4o", messages=words_only)
    high = await sdk.chat.completions.create(model="gpt-4o", messages=with_image("high"))
    low = await sdk.chat.completions.create(model="gpt-4-turbo", messages=with_image("low"))
    assert high.choices[0].message.content and low.choices[0].message.content
    assert high.usage.prompt_tokens - text_only.usage.prompt_tokens >= 765
    assert 85 <= low.usage.prompt_tokens - text_only.usage.prompt_tokens < 765


async def test_models_without_vision_refuse_images_with_openais_400_unless_the_knob_says_vision(simulator) -> None:
    sdk, _ = simulator()
    # The pricing table says which models read images: gpt-4o-mini does, Llama 3.1 does not.
    assert (await sdk.chat.completions.create(model="gpt-4o-mini", messages=with_image())).choices[0].message.content
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="llama-3.1-8b-instruct", messages=with_image())
    assert caught.value.body["message"] == "Invalid content type. image_url is only supported by certain models."
    assert caught.value.param == "messages[0].content[1].type"
    seeing, _ = simulator(models={"llama-3.1-8b-instruct": {"vision": True}})
    assert (await seeing.chat.completions.create(model="llama-3.1-8b-instruct", messages=with_image())).choices[0].message.content
    blind, _ = simulator(models={"gpt-4o": {"vision": False}})
    with pytest.raises(openai.BadRequestError):
        await blind.chat.completions.create(model="gpt-4o", messages=with_image())


def tool_turn(call_ids: list[str]) -> dict:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "lookup_order", "arguments": '{"order": "4411"}'}}
            for i in call_ids
        ],
    }


ASK = {"role": "user", "content": "Where is order 4411?"}
BAD_MESSAGES = [
    ([{"role": "user"}], "messages[0].content", "missing_required_parameter"),
    ([{"role": "assistant", "content": None}], "messages[0].content", "invalid_value"),
    ([{"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}], "messages[0].content[0].type", "invalid_value"),
    ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text", "invalid_type"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}], "messages[0].content[0].image_url.url", "invalid_value"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG, "detail": "ultra"}}]}], "messages[0].content[0].image_url.detail", "invalid_value"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}], "messages[0].content[0].type", None),
    ([ASK, {"role": "tool", "tool_call_id": "call_1", "content": "shipped"}], "messages[1].role", None),
    ([ASK, tool_turn(["call_1"]), {"role": "tool", "tool_call_id": "call_2", "content": "x"}], "messages[2].tool_call_id", "invalid_value"),
    ([ASK, tool_turn(["call_1", "call_2"]), {"role": "tool", "tool_call_id": "call_1", "content": "x"}, ASK], "messages[1].role", None),
    ([ASK, tool_turn(["call_1"])], "messages[1].role", None),
    ([ASK, tool_turn(["call_1"]), {"role": "tool", "content": "x"}], "messages[2].tool_call_id", "missing_required_parameter"),
    ([ASK, {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}], "messages[1].tool_calls[0].function.arguments", "invalid_type"),
]


@pytest.mark.parametrize(("messages", "param", "code"), BAD_MESSAGES)
async def test_malformed_conversations_are_refused_naming_the_message(simulator, messages, param, code) -> None:
    _, raw = simulator()
    response = await raw.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": messages})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


async def test_a_tool_result_conversation_is_accepted_and_answered_in_text(simulator) -> None:
    sdk, raw = simulator()
    messages = [
        ASK,
        tool_turn(["call_1", "call_2"]),
        {"role": "tool", "tool_call_id": "call_2", "content": "carrier: DHL"},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "status: shipped on Monday"}]},
    ]
    reply = await sdk.chat.completions.create(model="gpt-4o", messages=messages)
    content = reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop" and "shipped on Monday" in content and "DHL" in content
