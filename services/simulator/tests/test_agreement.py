"""The agreement model for self-consistency: word problems with a hidden right answer, sampled choices
that are right with p_right and agree more when right than when wrong (in-process ASGI, openai SDK)."""

from __future__ import annotations

import re
from collections import Counter

from modelyard_simulator import SimulatorConfig
from modelyard_simulator.reasoning import is_word_problem, problem_for

FINAL = re.compile(r"The answer is (\d+)\.\n#### (\d+)$")
STEP = re.compile(r"(\d+) ([-+*]) (\d+) = (\d+)")


def problem(i: int) -> str:
    return (
        f"A farmer has {12 + i % 17} cows and buys {3 + i % 5} more. Each cow gives {2 + i % 7} litres of milk "
        f"a day, and {i % 9 + 1} litres are spilled. How many litres does he sell each day? (farm {i})"
    )


def final_answer(text: str) -> int:
    match = FINAL.search(text)
    assert match and match.group(1) == match.group(2), text
    return int(match.group(2))


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_word_problems_are_recognised() -> None:
    assert is_word_problem(problem(1))
    assert is_word_problem("What is 1,200 divided among 4 people?")
    assert not is_word_problem("What is the status of ticket 4411?")
    assert not is_word_problem("Reset my password for accounts 12 and 13.")
    right = problem_for(problem(1), 3).right
    assert all(step.result == eval(f"{step.left} {step.op} {step.right}") for step in right.steps)  # noqa: S307


async def test_every_choice_ends_with_a_final_answer_and_the_hidden_one_is_stable(simulator) -> None:
    sdk, _ = simulator()
    reply = await sdk.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=user(problem(3)), n=6, temperature=0.7
    )
    choices = reply.parse().choices
    right = int(reply.headers["x-simulator-correct-answer"])
    flags = reply.headers["x-simulator-right"].split(",")
    assert [final_answer(c.message.content) == right for c in choices] == [f == "1" for f in flags]
    assert reply.parse().usage.completion_tokens > 6 * 20
    other, _ = simulator()
    again = await other.chat.completions.with_raw_response.create(model="gpt-4o", messages=user(problem(3)))
    assert int(again.headers["x-simulator-correct-answer"]) == right
    helpdesk = await sdk.chat.completions.create(model="gpt-4o", messages=user("How do I reset my password?"))
    assert "####" not in helpdesk.choices[0].message.content


async def test_right_answers_agree_more_than_wrong_ones_and_majority_beats_one_sample(simulator) -> None:
    sdk, _ = simulator()
    single_right = majority_right = 0
    right_pairs = wrong_pairs = wrong_agreeing = 0
    unanimous = Counter()
    questions = 150
    for i in range(questions):
        reply = await sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=user(problem(i)), n=5, temperature=0.8
        )
        right = int(reply.headers["x-simulator-correct-answer"])
        answers = [final_answer(c.message.content) for c in reply.parse().choices]
        single_right += answers[0] == right
        vote, votes = Counter(answers).most_common(1)[0]
        majority_right += vote == right
        unanimous[(votes == 5, answers[0] == right)] += 1
        wrong = [a for a in answers if a != right]
        wrong_pairs += len(wrong) * (len(wrong) - 1) // 2
        wrong_agreeing += sum(n * (n - 1) // 2 for n in Counter(wrong).values())
        right_pairs += 5 - len(wrong)
    assert 0.45 < single_right / questions < 0.9
    assert majority_right > single_right, "self-consistency must help on this model"
    assert wrong_pairs > 50 and 0.2 < wrong_agreeing / wrong_pairs < 0.7  # right answers always agree
    # agreement is a confidence signal: an answer its siblings all agree with is right more often
    unanimous_accuracy = unanimous[(True, True)] / max(1, unanimous[(True, True)] + unanimous[(True, False)])
    split_accuracy = unanimous[(False, True)] / max(1, unanimous[(False, True)] + unanimous[(False, False)])
    assert unanimous_accuracy > split_accuracy + 0.2


async def test_the_large_model_is_right_more_often(simulator) -> None:
    sdk, _ = simulator()
    rights = Counter()
    for model in ("gpt-4o-mini", "gpt-4o"):
        for i in range(60):
            reply = await sdk.chat.completions.with_raw_response.create(
                model=model, messages=user(problem(i)), temperature=1
            )
            rights[model] += reply.headers["x-simulator-right"] == "1"
    assert rights["gpt-4o"] > rights["gpt-4o-mini"] + 6


async def test_knobs_shape_agreement_and_slips(simulator) -> None:
    sure, _ = simulator(all_models={"latency_ms": 0, "right_rate_easy": 1, "right_rate_hard": 1})
    reply = await sure.chat.completions.create(model="gpt-4o-mini", messages=user(problem(5)), n=8, temperature=1)
    assert len({final_answer(c.message.content) for c in reply.choices}) == 1

    one_mistake, _ = simulator(
        all_models={"latency_ms": 0, "right_rate_easy": 0, "right_rate_hard": 0, "distractors": 1, "slip_rate": 0}
    )
    reply = await one_mistake.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=user(problem(5)), n=8, temperature=1
    )
    answers = {final_answer(c.message.content) for c in reply.parse().choices}
    assert len(answers) == 1 and answers != {int(reply.headers["x-simulator-correct-answer"])}
    for choice in reply.parse().choices:  # a fluent mistake: every step's arithmetic holds
        for a, op, b, c in STEP.findall(choice.message.content):
            assert eval(f"{a} {op} {b}") == int(c)  # noqa: S307

    slipping, _ = simulator(all_models={"latency_ms": 0, "right_rate_easy": 0, "right_rate_hard": 0, "slip_rate": 1})
    reply = await slipping.chat.completions.create(model="gpt-4o-mini", messages=user(problem(5)), n=4, temperature=1)
    for choice in reply.choices:
        steps = STEP.findall(choice.message.content)
        assert any(eval(f"{a} {op} {b}") != int(c) for a, op, b, c in steps)  # noqa: S307


async def test_spread_makes_a_prompts_samples_agree_on_being_right_or_wrong(simulator) -> None:
    async def consistent_prompts(spread: float) -> int:
        knobs = {"latency_ms": 0, "right_rate_easy": 0.5, "right_rate_hard": 0.5, "right_rate_spread": spread}
        _, raw = simulator(all_models=knobs)
        consistent = 0
        for i in range(40):
            response = await raw.post("/v1/chat/completions", json={
                "model": "gpt-4o", "messages": user(problem(i)), "n": 6, "temperature": 1})
            consistent += len(set(response.headers["x-simulator-right"].split(","))) == 1
        return consistent

    assert await consistent_prompts(4.0) > await consistent_prompts(0.0) + 10


async def test_final_answer_knob_never_and_always(simulator) -> None:
    never, _ = simulator(all_models={"latency_ms": 0, "final_answer": "never"})
    reply = await never.chat.completions.with_raw_response.create(model="gpt-4o", messages=user(problem(1)))
    assert "####" not in reply.parse().choices[0].message.content
    assert "x-simulator-correct-answer" not in reply.headers
    always, _ = simulator(all_models={"latency_ms": 0, "final_answer": "always"})
    reply = await always.chat.completions.create(model="gpt-4o", messages=user("How do I reset my password?"))
    final_answer(reply.choices[0].message.content)


async def test_wrong_answers_come_with_lower_token_probabilities(simulator) -> None:
    sdk, _ = simulator()
    means = {True: [], False: []}
    for i in range(80):
        reply = await sdk.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=user(problem(i)), n=3, temperature=1, logprobs=True,
            extra_headers={"X-Simulator-Difficulty": "0.4"},
        )
        for choice, flag in zip(reply.parse().choices, reply.headers["x-simulator-right"].split(","), strict=True):
            logprobs = [t.logprob for t in choice.logprobs.content]
            means[flag == "1"].append(sum(logprobs) / len(logprobs))
    assert sum(means[True]) / len(means[True]) > sum(means[False]) / len(means[False])


def test_config_defaults_make_the_small_model_less_reliable() -> None:
    models = SimulatorConfig().resolved_models()
    small, large = models["gpt-4o-mini"], models["gpt-4o"]
    assert small.right_rate_hard < large.right_rate_hard and small.right_rate_easy < large.right_rate_easy
