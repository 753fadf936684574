"""Replay of a labelled RouteLLM-style CSV (the shared GSM8K format), with recorded model names mapped to
served ones; a replayed answer obeys max_tokens and stop and streams like a generated one."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import openai
import pytest
from modelyard_simulator import SimulatorConfig
from modelyard_simulator.state import Simulator

SMALL, LARGE = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
ROWS = [
    {
        "prompt": "Ann has 3 boxes of 12 pens. She gives 5 pens away. How many pens are left?",
        SMALL: "True",
        LARGE: "True",
        f"{SMALL}_response": " 3 boxes * 12 pens = 36 pens.\n36 - 5 = 31.\n#### 31",
        f"{LARGE}_response": "Ann starts with 3 * 12 = 36 pens and has 36 - 5 = 31 left.",
    },
    {
        "prompt": "A train travels 60 km per hour for 3 hours. How far does it go?",
        SMALL: "False",
        LARGE: "True",
        f"{SMALL}_response": "60 + 3 = 63 km.\n#### 63",
        f"{LARGE}_response": "It goes 60 * 3 = 180 km.",
    },
]
MAPPING = {SMALL: ["gpt-4o-mini"], LARGE: ["gpt-4o", "gpt-4-turbo"]}


def write_csv(path: Path, rows: list[dict[str, str]] = ROWS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_csv_answers_are_served_under_the_mapped_names(simulator, tmp_path: Path) -> None:
    sdk, raw = simulator(replay_file=write_csv(tmp_path / "gsm8k.csv"), replay_models=MAPPING)
    question = ROWS[1]["prompt"]
    small = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=user(f"  {question}\n"))
    assert small.parse().choices[0].message.content == ROWS[1][f"{SMALL}_response"]
    assert small.headers["x-simulator-source"] == "replay" and small.headers["x-simulator-replay-correct"] == "0"
    for model in ("gpt-4o", "gpt-4-turbo"):
        large = await sdk.chat.completions.with_raw_response.create(model=model, messages=user(question))
        assert large.parse().choices[0].message.content == ROWS[1][f"{LARGE}_response"]
        assert large.headers["x-simulator-replay-correct"] == "1"
    unmapped = await sdk.chat.completions.with_raw_response.create(model="llama-3.1-8b-instruct", messages=user(question))
    assert unmapped.headers["x-simulator-source"] == "generated"
    config = (await raw.get("/admin/config")).json()["replay"]
    assert config["prompts"] == 2


async def test_a_name_without_mapping_is_served_as_recorded(simulator, tmp_path: Path) -> None:
    sdk, _ = simulator(
        replay_file=write_csv(tmp_path / "gsm8k.csv"), models={LARGE: {"kind": "llm"}}, replay_models={}
    )
    reply = await sdk.chat.completions.create(model=LARGE, messages=user(ROWS[0]["prompt"]))
    assert reply.choices[0].message.content == ROWS[0][f"{LARGE}_response"]


async def test_replayed_answers_obey_max_tokens_stop_and_n(simulator, tmp_path: Path) -> None:
    sdk, _ = simulator(replay_file=write_csv(tmp_path / "gsm8k.csv"), replay_models=MAPPING)
    question = ROWS[0]["prompt"]
    recorded = ROWS[0][f"{SMALL}_response"]
    cut = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(question), max_tokens=4)
    assert cut.choices[0].finish_reason == "length" and recorded.startswith(cut.choices[0].message.content)
    stopped = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(question), stop="####")
    assert stopped.choices[0].message.content == recorded[: recorded.index("####")]
    one = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(question))
    several = await sdk.chat.completions.create(model="gpt-4o-mini", messages=user(question), n=3)
    assert [c.message.content for c in several.choices] == [recorded] * 3  # what the model said, each time
    assert several.usage.completion_tokens == 3 * one.usage.completion_tokens


@pytest.mark.loopback  # a simulator process of its own, over TCP
def test_a_replayed_csv_answer_streams_at_the_model_rate(start_simulator_process, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "gsm8k.csv")
    live = start_simulator_process({
        "MODELYARD_SIMULATOR_REPLAY_FILE": str(path),
        "MODELYARD_SIMULATOR_REPLAY_MODELS": json.dumps({SMALL: "gpt-4o-mini"}),
        "MODELYARD_SIMULATOR_MODELS": json.dumps({"gpt-4o-mini": {"latency_ms": 0, "stream_tokens_per_s": 40}}),
    })
    with openai.OpenAI(base_url=f"{live.base_url}/v1", api_key="unused", max_retries=0) as sdk:
        started = time.monotonic()
        text, chunks = "", 0
        for chunk in sdk.chat.completions.create(model="gpt-4o-mini", messages=user(ROWS[0]["prompt"]), stream=True):
            for choice in chunk.choices:
                if choice.delta.content:
                    text, chunks = text + choice.delta.content, chunks + 1
        elapsed = time.monotonic() - started
    assert text == ROWS[0][f"{SMALL}_response"] and chunks > 5
    assert elapsed >= (chunks - 1) / 40 * 0.95


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("question,answer\nq,a\n", "needs a 'prompt' column"),
        (f"prompt,{SMALL},{SMALL}_response\nq,maybe,a\n", "must be True or False"),
    ],
)
def test_a_bad_csv_fails_at_start_up(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        Simulator(SimulatorConfig(replay_file=path))


def test_the_mapping_accepts_one_name_or_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_SIMULATOR_REPLAY_MODELS", json.dumps({SMALL: "gpt-4o-mini", LARGE: ["gpt-4o"]}))
    assert SimulatorConfig().replay_models == {SMALL: ["gpt-4o-mini"], LARGE: ["gpt-4o"]}
