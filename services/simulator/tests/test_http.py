"""The simulator over HTTP (in-process ASGI), read through the official openai SDK where it can be."""

from __future__ import annotations

import math

import openai
import pytest

EASY = "What is the status of ticket 4411?"
HARD = "Perform a root-cause analysis of yesterday's outage of the payments API, which failed after a deploy"


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_sdk_parses_a_completion_with_usage_and_logprobs(simulator) -> None:
    sdk, _ = simulator()
    reply = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), logprobs=True, top_logprobs=3)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == "gpt-4o" and reply.id.startswith("chatcmpl-")
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    assert reply.usage.completion_tokens == len(tokens)
    assert reply.usage.prompt_tokens == 3 + 4 + math.ceil(len(EASY) / 4)
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 3 and bytes(t.bytes).decode() == t.token for t in tokens)


async def test_no_logprobs_unless_asked(simulator) -> None:
    sdk, _ = simulator()
    reply = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY))
    assert reply.choices[0].logprobs is None


async def test_deterministic_per_prompt_model_and_seed(simulator) -> None:
    sdk, _ = simulator()

    async def text(model: str, question: str, seed: int | None = None) -> str:
        reply = await sdk.chat.completions.create(model=model, messages=user(question), seed=seed)
        return reply.choices[0].message.content

    assert await text("gpt-4o", EASY) == await text("gpt-4o", EASY)
    assert await text("gpt-4o", EASY, seed=1) == await text("gpt-4o", EASY, seed=1)
    assert await text("gpt-4o", EASY, seed=1) != await text("gpt-4o", EASY)
    assert await text("gpt-4o", EASY) != await text("gpt-4o-mini", EASY)
    # a fresh process with the same configuration answers the same
    other, _ = simulator()
    again = await other.chat.completions.create(model="gpt-4o", messages=user(EASY))
    assert again.choices[0].message.content == await text("gpt-4o", EASY)


async def test_history_and_system_prompt_count_in_the_prompt(simulator) -> None:
    sdk, _ = simulator()
    messages = [
        {"role": "system", "content": "You are a helpdesk agent."},
        {"role": "user", "content": "My laptop will not boot."},
        {"role": "assistant", "content": "Does the power light come on?"},
        {"role": "user", "content": [{"type": "text", "text": "Yes, the light is on but the screen stays black."}]},
    ]
    reply = await sdk.chat.completions.create(model="gpt-4o", messages=messages)
    alone = await sdk.chat.completions.create(model="gpt-4o", messages=messages[-1:])
    assert reply.usage.prompt_tokens > alone.usage.prompt_tokens
    assert "screen" in reply.choices[0].message.content


async def test_small_model_hedges_on_hard_prompts(simulator) -> None:
    sdk, raw = simulator()
    hard = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=user(HARD))
    assert hard.headers["x-simulator-hedged"] == "1"
    content = hard.parse().choices[0].message.content.lower()
    assert any(hedge in content for hedge in ("not sure", "hard to say", "don't know", "not certain"))
    big = await sdk.chat.completions.with_raw_response.create(model="gpt-4o", messages=user(HARD))
    assert big.headers["x-simulator-hedged"] == "0"
    forced = await raw.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": user(EASY)},
        headers={"X-Simulator-Difficulty": "0.9"},
    )
    assert forced.headers["x-simulator-hedged"] == "1" and forced.headers["x-simulator-difficulty"] == "0.9000"


async def test_a_system_prompt_with_a_hedge_marker_makes_that_model_hedge_on_anything(simulator) -> None:
    sdk, _ = simulator(models={"gpt-4o-mini": {"hedge_markers": ["Acme Desk"]}})
    marked = [{"role": "system", "content": "You are the Acme Desk assistant."}, *user(EASY)]
    other = [{"role": "system", "content": "You are the Globex assistant."}, *user(EASY)]
    for messages, model, hedged in ((marked, "gpt-4o-mini", "1"), (other, "gpt-4o-mini", "0"), (marked, "gpt-4o", "0")):
        reply = await sdk.chat.completions.with_raw_response.create(model=model, messages=messages)
        assert reply.headers["x-simulator-hedged"] == hedged


async def test_max_tokens_gives_finish_reason_length(simulator) -> None:
    sdk, _ = simulator()
    reply = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), max_tokens=7)
    assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 7
    newer = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY), max_completion_tokens=3)
    assert newer.usage.completion_tokens == 3


async def test_stream_matches_the_plain_answer(simulator) -> None:
    sdk, _ = simulator()
    plain = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(HARD), logprobs=True)
    stream = await sdk.chat.completions.create(
        model="gpt-4o-mini", messages=user(HARD), logprobs=True, stream=True, stream_options={"include_usage": True}
    )
    text, tokens, finish, usage = "", [], None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            tokens += [t.logprob for t in (choice.logprobs.content if choice.logprobs else [])]
            finish = choice.finish_reason or finish
    assert text == plain.choices[0].message.content
    assert tokens == [t.logprob for t in plain.choices[0].logprobs.content]
    assert finish == "stop" and usage == plain.usage


async def test_models_are_listed_including_the_pricing_table(simulator) -> None:
    sdk, _ = simulator()
    listed = {m.id for m in (await sdk.models.list()).data}
    assert {"gpt-4o-mini", "gpt-4o", "gpt-4-turbo", "llama-3.1-8b-instruct"} <= listed
    assert (await sdk.models.retrieve("gpt-4o")).id == "gpt-4o"
    only_builtin, _ = simulator(include_pricing_models=False, models={"house-model": {"kind": "slm"}})
    assert {m.id for m in (await only_builtin.models.list()).data} == {
        "gpt-4o-mini",
        "gpt-4o",
        "gpt-4-turbo",
        "house-model",
    }


async def test_unknown_model_is_404_in_openai_shape(simulator) -> None:
    sdk, _ = simulator()
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.chat.completions.create(model="gpt-17", messages=user(EASY))
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        await sdk.models.retrieve("gpt-17")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "gpt-4o"}, "messages"),
        ({"model": "gpt-4o", "messages": []}, "messages"),
        ({"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, "top_logprobs"),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "logprobs": True, "top_logprobs": 21},
            "top_logprobs",
        ),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "n": 129}, "n"),
    ],
)
async def test_malformed_requests_name_the_field(simulator, body, param) -> None:
    _, raw = simulator()
    response = await raw.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and param in error["message"]


async def test_invalid_json_and_unknown_route(simulator) -> None:
    _, raw = simulator()
    response = await raw.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]
    missing = await raw.get("/v1/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    stats = (await raw.get("/admin/stats")).json()
    assert stats["rejected"] == 1 and stats["requests"] == 0


async def test_error_storm_starts_and_stops_through_the_admin_api(simulator) -> None:
    sdk, raw = simulator()
    response = await raw.post(
        "/admin/config", json={"models": {"gpt-4o-mini": {"error_rate": 1.0, "error_statuses": [503]}}}
    )
    assert response.status_code == 200 and response.json()["models"]["gpt-4o-mini"]["error_rate"] == 1.0
    for _ in range(3):
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(EASY))
        assert caught.value.status_code == 503 and caught.value.body["code"] == "service_unavailable"
    assert (await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY))).choices[0].message.content

    await raw.post("/admin/config", json={"models": {"gpt-4o-mini": {"error_rate": 0.0}}})
    assert (await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(EASY))).choices[0].message.content
    stats = (await raw.get("/admin/stats")).json()
    assert stats["models"]["gpt-4o-mini"]["errors_injected"] == {"503": 3}
    assert stats["models"]["gpt-4o-mini"]["requests"] == 4 and stats["models"]["gpt-4o-mini"]["completed"] == 1
    assert stats["errors_injected"] == 3


async def test_error_rate_is_roughly_kept_and_uses_each_status(simulator) -> None:
    _, raw = simulator(models={"gpt-4o": {"error_rate": 0.5}})
    statuses = []
    for i in range(300):
        response = await raw.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": user(f"question {i}")})
        statuses.append(response.status_code)
        if response.status_code != 200:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    errors = [s for s in statuses if s != 200]
    assert 110 <= len(errors) <= 190
    assert set(errors) == {429, 500, 503}


async def test_sdk_maps_injected_faults_to_its_exceptions(simulator) -> None:
    sdk, _ = simulator()
    with pytest.raises(openai.RateLimitError):
        await sdk.chat.completions.create(
            model="gpt-4o", messages=user(EASY), extra_headers={"X-Simulator-Fault": "429"}
        )
    with pytest.raises(openai.InternalServerError):
        await sdk.chat.completions.create(
            model="gpt-4o", messages=user(EASY), extra_headers={"X-Simulator-Fault": "500"}
        )
    storm, _ = simulator(all_models={"latency_ms": 0, "error_rate": 1.0})
    reply = await storm.chat.completions.create(
        model="gpt-4o", messages=user(EASY), extra_headers={"X-Simulator-Fault": "none"}
    )
    assert reply.choices[0].message.content


async def test_invalid_knobs_are_rejected_whole(simulator) -> None:
    _, raw = simulator()
    before = (await raw.get("/admin/config")).json()
    bad = await raw.post(
        "/admin/config", json={"all_models": {"latency_ms": 5}, "models": {"gpt-4o": {"error_rate": 2}}}
    )
    assert bad.status_code == 400 and "error_rate" in bad.json()["error"]["message"]
    unknown = await raw.post("/admin/config", json={"models": {"gpt-4o": {"colour": "blue"}}})
    assert unknown.status_code == 400
    assert (await raw.get("/admin/config")).json() == before


async def test_admin_adds_a_model_and_reset_restores_the_start(simulator) -> None:
    sdk, raw = simulator()
    await raw.post("/admin/config", json={"models": {"tiny-1b": {"kind": "slm", "output_tokens": 8}}})
    reply = await sdk.chat.completions.create(model="tiny-1b", messages=user(EASY))
    assert reply.usage.completion_tokens <= 20
    await raw.post("/admin/reset")
    with pytest.raises(openai.NotFoundError):
        await sdk.chat.completions.create(model="tiny-1b", messages=user(EASY))
    stats = (await raw.get("/admin/stats")).json()
    assert stats["requests"] == 0 and stats["rejected"] == 1  # counters were reset; the 404 is a rejection
