"""Generation parameters honoured as a real model would, and requests OpenAI would refuse refused like OpenAI
(in-process ASGI, read through the official openai SDK where it can be)."""

from __future__ import annotations

import openai
import pytest

EASY = "What is the status of ticket 4411?"
MSG = [{"role": "user", "content": "x"}]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_stop_ends_the_text_before_the_first_stop_sequence(simulator) -> None:
    sdk, _ = simulator()
    full = (await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY))).choices[0].message.content
    words = full.split()
    second, fifth = words[1], words[4]
    one = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), stop=fifth)
    assert one.choices[0].message.content == full[: full.index(fifth)]
    assert one.choices[0].finish_reason == "stop"
    several = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), stop=[fifth, second, "zzz"])
    assert several.choices[0].message.content == full[: full.index(second)]
    assert several.usage.completion_tokens < one.usage.completion_tokens
    absent = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), stop=["never-said"])
    assert absent.choices[0].message.content == full and absent.choices[0].finish_reason == "stop"


async def test_max_tokens_before_the_stop_sequence_is_length(simulator) -> None:
    sdk, _ = simulator()
    full = (await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY))).choices[0].message.content
    late_word = full.split()[-2]
    reply = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), stop=late_word, max_tokens=3)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 3


async def test_seed_and_temperature_zero_repeat_temperature_without_seed_varies(simulator) -> None:
    sdk, _ = simulator()

    async def text(**params: object) -> str:
        reply = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), **params)
        return reply.choices[0].message.content

    assert await text(seed=7, temperature=0) == await text(seed=7, temperature=0)
    assert await text(temperature=0) == await text(temperature=0)
    assert await text(seed=7, temperature=1.2) == await text(seed=7, temperature=1.2)
    sampled = {await text(temperature=0.9) for _ in range(6)}
    assert len(sampled) >= 5, "temperature > 0 without a seed must vary between calls"
    assert await text(seed=7, temperature=0) != await text(seed=8, temperature=0)


async def test_unseeded_calls_vary_when_vary_unseeded_is_set(simulator) -> None:
    fixed, _ = simulator()
    varying, _ = simulator(vary_unseeded=True)

    async def texts(sdk: openai.AsyncOpenAI) -> set[str]:
        replies = [await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY)) for _ in range(4)]
        return {r.choices[0].message.content for r in replies}

    assert len(await texts(fixed)) == 1
    assert len(await texts(varying)) == 4


async def test_n_choices_are_indexed_distinct_and_all_metered(simulator) -> None:
    sdk, _ = simulator()
    reply = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(EASY), n=4, logprobs=True)
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert len({c.message.content for c in reply.choices}) == 4
    assert reply.usage.completion_tokens == sum(len(c.logprobs.content) for c in reply.choices)
    one = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(EASY))
    assert one.choices[0].message.content == reply.choices[0].message.content
    greedy = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(EASY), n=3, temperature=0)
    assert len({c.message.content for c in greedy.choices}) == 1, "greedy decoding gives one answer"


async def test_n_choices_stream_with_their_index_and_usage_counts_all(simulator) -> None:
    sdk, _ = simulator()
    plain = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), n=3, max_tokens=9)
    stream = await sdk.chat.completions.create(
        model="gpt-4o", messages=user(EASY), n=3, max_tokens=9, stream=True, stream_options={"include_usage": True}
    )
    texts, finishes, usage = ["", "", ""], [None] * 3, None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            finishes[choice.index] = choice.finish_reason or finishes[choice.index]
    assert texts == [c.message.content for c in plain.choices]
    assert finishes == ["length"] * 3 and usage.completion_tokens == 27 == plain.usage.completion_tokens


async def test_choices_of_different_lengths_stream_without_empty_chunks(simulator) -> None:
    sdk, _ = simulator()
    plain = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), n=4)
    assert len({c.message.content for c in plain.choices}) == 4
    texts, finishes = ["", "", "", ""], [[], [], [], []]
    async for chunk in await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), n=4, stream=True):
        for choice in chunk.choices:
            if choice.finish_reason:
                finishes[choice.index].append(choice.finish_reason)
            elif choice.delta.role is None:
                assert choice.delta.content, "a content chunk carries content"
                texts[choice.index] += choice.delta.content
    assert texts == [c.message.content for c in plain.choices] and finishes == [["stop"]] * 4


async def test_accepted_parameters_and_unknown_fields(simulator) -> None:
    sdk, _ = simulator()
    reply = await sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "developer", "content": "Be brief."}, *user(EASY)],
        temperature=2,
        top_p=0.1,
        presence_penalty=-2,
        frequency_penalty=2,
        logit_bias={"50256": -100, "1234": 100},
        user="end-user-42",
        metadata={"ticket": "4411"},
        store=False,
        parallel_tool_calls=None,
        response_format={"type": "text"},
        extra_body={"some_future_field": {"nested": True}, "reasoning": None},
    )
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"


OPENAI_REFUSES = [
    ({"temperature": 3}, "temperature", "decimal_above_max_value"),
    ({"temperature": -0.5}, "temperature", "decimal_below_min_value"),
    ({"temperature": "hot"}, "temperature", "invalid_type"),
    ({"top_p": 1.5}, "top_p", "decimal_above_max_value"),
    ({"presence_penalty": 2.5}, "presence_penalty", "decimal_above_max_value"),
    ({"frequency_penalty": -3}, "frequency_penalty", "decimal_below_min_value"),
    ({"n": 129}, "n", "integer_above_max_value"),
    ({"n": 0}, "n", "integer_below_min_value"),
    ({"n": 1.5}, "n", "invalid_type"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
    ({"stop": 5}, "stop", "invalid_type"),
    ({"stop": ["a", 5]}, "stop[1]", "invalid_type"),
    ({"seed": "abc"}, "seed", "invalid_type"),
    ({"logit_bias": {"50256": 150}}, "logit_bias", "decimal_above_max_value"),
    ({"logit_bias": {"50256": -100.5}}, "logit_bias", "decimal_below_min_value"),
    ({"logit_bias": {"hello": 1}}, "logit_bias", "invalid_value"),
    ({"logit_bias": ["x"]}, "logit_bias", "invalid_type"),
    ({"user": 42}, "user", "invalid_type"),
    ({"max_completion_tokens": 0}, "max_completion_tokens", "integer_below_min_value"),
    ({"stream_options": {"include_usage": True}}, "stream_options", None),
    ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", "invalid_type"),
    ({"metadata": {"a": 1}}, "metadata.a", "invalid_type"),
    ({"modalities": ["text", "audio"]}, "modalities", "invalid_value"),
    ({"response_format": {"type": "yaml"}}, "response_format.type", "invalid_value"),
    ({"response_format": {"type": "json_object"}}, "messages", None),
    ({"tool_choice": "auto"}, "tool_choice", "invalid_value"),
    ({"parallel_tool_calls": True}, "parallel_tool_calls", "invalid_value"),
]


@pytest.mark.parametrize(("extra", "param", "code"), OPENAI_REFUSES)
async def test_requests_openai_refuses_get_its_400_naming_the_param(simulator, extra, param, code) -> None:
    _, raw = simulator()
    response = await raw.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": MSG, **extra})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert param.split(".")[0].split("[")[0] in error["message"]


async def test_the_sdk_raises_bad_request_with_the_param(simulator) -> None:
    sdk, _ = simulator()
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), temperature=3)
    assert caught.value.param == "temperature" and caught.value.code == "decimal_above_max_value"
    assert "Expected a value <= 2, but got 3 instead" in caught.value.message
