"""Knobs: configuration layers and environment, latency distributions, the 0 ms mode, replay mode."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import modelyard_simulator.app as app_module
import pydantic
import pytest
from modelyard_simulator import ModelKnobs, SimulatorConfig
from modelyard_simulator.state import Simulator

EASY = "What is the status of ticket 4411?"


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_defaults_serve_the_class_models_with_their_kinds() -> None:
    models = SimulatorConfig().resolved_models()
    assert (models["gpt-4o-mini"].kind, models["gpt-4o"].kind, models["gpt-4-turbo"].kind) == ("slm", "llm", "llm_plus")
    assert models["gpt-4o-mini"].hedge_above < 1.0 and models["gpt-4o"].hedge_above == 1.0
    assert models["llama-3.1-8b-instruct"].kind == "slm" and models["llama-3.1-70b-instruct"].kind == "llm"
    assert SimulatorConfig().port == 8090 and SimulatorConfig().host == "127.0.0.1"


def test_layers_all_models_then_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_SIMULATOR_ALL_MODELS__LATENCY_MS", "0")
    monkeypatch.setenv(
        "MODELYARD_SIMULATOR_MODELS",
        json.dumps({"gpt-4o": {"error_rate": 0.25, "latency_ms": 50}, "house-model": {"kind": "slm"}}),
    )
    monkeypatch.setenv("MODELYARD_SIMULATOR_PORT", "9999")
    config = SimulatorConfig()
    models = config.resolved_models()
    assert config.port == 9999
    assert models["gpt-4o-mini"].latency_ms == 0
    assert (models["gpt-4o"].latency_ms, models["gpt-4o"].error_rate) == (50, 0.25)
    assert models["house-model"].kind == "slm" and models["house-model"].latency_ms == 0


@pytest.mark.parametrize(
    "fields",
    [
        {"models": {"gpt-4o": {"error_rate": 1.5}}},
        {"models": {"gpt-4o": {"speed": "fast"}}},
        {"all_models": {"latency_distribution": "uniform"}},
        {"models": {"x": {"kind": "huge"}}},
        {"models": {"gpt-4o": {"timeout_s": 3600}}},
    ],
)
def test_bad_knobs_fail_at_start_up(fields: dict) -> None:
    with pytest.raises(pydantic.ValidationError):
        SimulatorConfig(**fields)


def test_latency_distributions_and_cap() -> None:
    sim = Simulator(SimulatorConfig(seed=3))
    fixed = ModelKnobs(latency_ms=40)
    assert sim.latency_s(fixed) == 0.040
    normal = [
        sim.latency_s(ModelKnobs(latency_distribution="normal", latency_ms=100, latency_stddev_ms=20))
        for _ in range(2000)
    ]
    assert 0.095 < statistics.mean(normal) < 0.105 and 0.017 < statistics.stdev(normal) < 0.023
    lognormal = [
        sim.latency_s(ModelKnobs(latency_distribution="lognormal", latency_ms=50, latency_sigma=0.5))
        for _ in range(2000)
    ]
    assert 0.045 < statistics.median(lognormal) < 0.055 and max(lognormal) > 0.1
    capped = [
        sim.latency_s(ModelKnobs(latency_distribution="lognormal", latency_ms=50, latency_sigma=2, latency_max_ms=60))
        for _ in range(500)
    ]
    assert max(capped) == 0.060 and min(capped) >= 0


def test_zero_ms_mode_neither_rolls_dice_nor_sleeps() -> None:
    sim = Simulator(SimulatorConfig(seed=3))
    state = sim.dice.getstate()
    assert sim.latency_s(ModelKnobs(latency_distribution="lognormal", latency_ms=0)) == 0.0
    assert sim.roll_fault(ModelKnobs()) is None
    assert sim.dice.getstate() == state


async def test_zero_ms_mode_answers_without_sleeping(simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s in the 0 ms mode")

    sdk, _ = simulator()
    monkeypatch.setattr(app_module.asyncio, "sleep", no_sleep)
    reply = await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY))
    assert reply.choices[0].message.content


async def test_latency_is_slept_and_can_be_overridden_per_request(simulator) -> None:
    sdk, _ = simulator(all_models={"latency_ms": 150})
    started = time.perf_counter()
    await sdk.chat.completions.create(model="gpt-4o", messages=user(EASY))
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    await sdk.chat.completions.create(
        model="gpt-4o", messages=user(EASY), extra_headers={"X-Simulator-Latency-Ms": "0"}
    )
    assert time.perf_counter() - started < 0.15


async def test_bad_override_header_is_400(simulator) -> None:
    _, raw = simulator()
    for header, value in [
        ("X-Simulator-Latency-Ms", "soon"),
        ("X-Simulator-Fault", "418"),
        ("X-Simulator-Difficulty", "2"),
    ]:
        response = await raw.post(
            "/v1/chat/completions", json={"model": "gpt-4o", "messages": user(EASY)}, headers={header: value}
        )
        assert response.status_code == 400 and response.json()["error"]["param"] == header


def write_replay(path: Path) -> Path:
    records = [
        {
            "prompt": "Where is my parcel?",
            "responses": {
                "gpt-4o-mini": "It left the depot this morning.",
                "gpt-4o": "Your parcel is out for delivery.",
            },
        },
        {"prompt": "  Reset my token  ", "responses": {"gpt-4o": "Done: the token was reset."}},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    return path


async def test_replay_serves_recorded_answers_on_the_last_user_message(simulator, tmp_path: Path) -> None:
    sdk, raw = simulator(replay_file=write_replay(tmp_path / "replay.jsonl"))
    conversation = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "Where is my parcel?"},
    ]
    reply = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=conversation, logprobs=True
    )
    parsed = reply.parse()
    assert parsed.choices[0].message.content == "It left the depot this morning."
    assert reply.headers["x-simulator-source"] == "replay"
    assert parsed.usage.completion_tokens == len(parsed.choices[0].logprobs.content)
    big = await sdk.chat.completions.create(model="gpt-4o", messages=user("Reset my token"))
    assert big.choices[0].message.content == "Done: the token was reset."
    # not recorded for this model / prompt: generated text (fallback "generate")
    fallback = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=user("Reset my token"))
    assert fallback.headers["x-simulator-source"] == "generated"
    stats = (await raw.get("/admin/stats")).json()
    assert stats["models"]["gpt-4o-mini"]["replayed"] == 1 and stats["models"]["gpt-4o"]["replayed"] == 1


async def test_replayed_answers_can_come_without_log_probabilities_as_recorded(simulator, tmp_path: Path) -> None:
    sdk, _ = simulator(replay_file=write_replay(tmp_path / "replay.jsonl"), replay_logprobs=False)
    replayed = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user("Where is my parcel?"), logprobs=True)
    assert replayed.choices[0].message.content == "It left the depot this morning." and replayed.choices[0].logprobs is None
    assert replayed.usage.completion_tokens > 0
    generated = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user("Reset my token"), logprobs=True)
    assert generated.choices[0].logprobs.content  # only replayed answers lose them


async def test_replay_record_keyed_on_a_system_prompt_wins_only_for_that_system_prompt(simulator, tmp_path: Path) -> None:
    path = tmp_path / "replay.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "Where is my parcel?", "responses": {"gpt-4o": "Generic: it is on its way."}},
        {"prompt": "Where is my parcel?", "system": " You are Parcelbot. ", "responses": {"gpt-4o": "Parcelbot: depot 7."}},
    ]) + "\n")
    sdk, _ = simulator(replay_file=path)

    async def ask(*messages: dict[str, str]) -> str:
        reply = await sdk.chat.completions.create(model="gpt-4o", messages=list(messages))
        return reply.choices[0].message.content

    question = {"role": "user", "content": "Where is my parcel?"}
    assert await ask({"role": "system", "content": "You are Parcelbot."}, question) == "Parcelbot: depot 7."
    assert await ask({"role": "system", "content": "You are someone else."}, question) == "Generic: it is on its way."
    assert await ask(question) == "Generic: it is on its way."


async def test_replay_miss_can_be_a_404(simulator, tmp_path: Path) -> None:
    import openai

    sdk, _ = simulator(replay_file=write_replay(tmp_path / "replay.jsonl"), replay_fallback="not_found")
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.chat.completions.create(model="gpt-4o", messages=user("Something never recorded"))
    assert caught.value.body["code"] == "replay_miss"


def test_bad_replay_file_fails_at_start_up_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "a", "responses": {"gpt-4o": "b"}}\n{"prompt": "c"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        Simulator(SimulatorConfig(replay_file=path))
