"""The scorer against the model simulator's helpdesk answers (in-process, behind the openai SDK): the seed's
behaviour holds on them — the large models' answers stay, the small model escalates exactly its hedged ones."""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from modelyard_inference.answers import Score, score
from modelyard_inference.answers.verifiers import phrases

HARD_PROMPTS = [
    "Perform a root-cause analysis of yesterday's outage of the payments API, "
    "which failed for 40 minutes after a deploy",
    "Design a disaster recovery plan for our multi-region database cluster, including failover and data consistency",
    "Compare the trade-offs of two failover strategies for our distributed message queue and recommend one",
]
EASY_PROMPTS = [
    "What is the status of ticket 4411?",
    "How do I reset my password?",
    "Please unlock my login for the portal",
]
VPN = "How do I configure the VPN client on the Windows laptops of the sales team?"


@pytest.fixture
def simulated_models():
    from modelyard_simulator import SimulatorConfig, create_app

    app = create_app(SimulatorConfig(_env_file=None, all_models={"latency_ms": 0}))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://simulator")
    return openai.AsyncOpenAI(base_url="http://simulator/v1", api_key="unused", http_client=http, max_retries=0)


async def ask_and_score(client: openai.AsyncOpenAI, model: str, prompt: str) -> Score:
    reply = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                 logprobs=True)
    choice = reply.choices[0]
    return score(prompt, choice.message.content, logprobs=[t.logprob for t in choice.logprobs.content],
                 finish_reason=choice.finish_reason)


async def test_simulated_large_models_answers_stay(simulated_models) -> None:
    for model in ("gpt-4o", "gpt-4-turbo"):
        for prompt in HARD_PROMPTS + EASY_PROMPTS:
            result = await ask_and_score(simulated_models, model, prompt)
            assert not result.escalate() and result.confidence >= 0.8, (model, prompt, result.reasons)


async def test_simulated_small_model_escalates_hard_prompts_only(simulated_models) -> None:
    for prompt in HARD_PROMPTS:
        result = await ask_and_score(simulated_models, "gpt-4o-mini", prompt)
        assert result.escalate() and any(r.startswith("hedging") for r in result.reasons), prompt
    for prompt in EASY_PROMPTS:
        assert not (await ask_and_score(simulated_models, "gpt-4o-mini", prompt)).escalate(), prompt


def test_every_simulator_hedge_is_a_known_phrase_and_escalates() -> None:
    from modelyard_simulator.generate import HEDGES

    for hedge in HEDGES:
        assert phrases().uncertainty.found(hedge.format(topic="the topic").lower()), hedge
        answer = hedge.format(topic="the VPN client") + " Install the client and import the team profile."
        result = score(VPN, answer, logprobs=[math.log(0.95)] * 20)
        assert result.escalate() and any(r.startswith("hedging") for r in result.reasons), hedge


def test_every_simulator_opening_stays() -> None:
    from modelyard_simulator.generate import OPENINGS

    for opening in OPENINGS:
        answer = opening.format(topic="the VPN client") + " Install the client and import the team profile."
        assert not score(VPN, answer, logprobs=[math.log(0.95)] * 20).escalate(), opening
