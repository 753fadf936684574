import math

from modelyard_simulator import ModelKnobs, SimulatorConfig
from modelyard_simulator.generate import answer, count_prompt_tokens, logprob_entries, tokenize

KNOBS = SimulatorConfig().resolved_models()
HARD = "Perform a root-cause analysis of yesterday's outage of the payments API, which failed after a deploy"
EASY = "What is the status of ticket 4411?"


def ask(model: str, question: str, **kwargs):
    return answer(
        KNOBS[model],
        model=model,
        question=question,
        conversation=f"user: {question}",
        seed=kwargs.pop("seed", 0),
        **kwargs,
    )


def test_tokens_cover_the_text_exactly() -> None:
    for text in ["Hello, world!", "  two  spaces\nand a newline ", "ünïcode – dashes… 12345678", ""]:
        assert "".join(tokenize(text)) == text


def test_same_inputs_same_answer_and_seed_changes_it() -> None:
    first, again = ask("gpt-4o", EASY, want_logprobs=True), ask("gpt-4o", EASY, want_logprobs=True)
    assert first == again
    assert ask("gpt-4o", EASY, seed=7).text != first.text
    assert ask("gpt-4o-mini", EASY).text != first.text


def test_answer_talks_about_the_question() -> None:
    reply = ask("gpt-4o", "My printer shows a paper jam error on the third floor")
    assert "printer" in reply.text and "paper" in reply.text


def test_output_length_follows_the_knob() -> None:
    short = ModelKnobs(output_tokens=20)
    long = ModelKnobs(output_tokens=300)
    n_short = len(answer(short, model="m", question=EASY, conversation=EASY, seed=0).tokens)
    n_long = len(answer(long, model="m", question=EASY, conversation=EASY, seed=0).tokens)
    assert 10 <= n_short <= 45
    assert 200 <= n_long <= 420


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    reply = ask("gpt-4o", EASY, max_tokens=5, want_logprobs=True)
    assert reply.finish_reason == "length"
    assert len(reply.tokens) == 5 and len(reply.token_probs) == 5
    assert reply.text == "".join(reply.tokens)
    assert ask("gpt-4o", EASY, max_tokens=10_000).finish_reason == "stop"


def test_small_model_hedges_on_hard_prompts_large_model_does_not() -> None:
    assert ask("gpt-4o-mini", HARD).hedged
    assert not ask("gpt-4o-mini", EASY).hedged
    assert not ask("gpt-4o", HARD).hedged
    assert not ask("gpt-4-turbo", HARD).hedged


def test_token_probabilities_fall_with_difficulty_for_the_small_model() -> None:
    def geometric_mean(model: str, question: str) -> float:
        probs = ask(model, question, want_logprobs=True).token_probs
        return math.exp(sum(map(math.log, probs)) / len(probs))

    assert geometric_mean("gpt-4o-mini", HARD) < 0.5 < 0.85 < geometric_mean("gpt-4o-mini", EASY)
    assert geometric_mean("gpt-4o", HARD) > 0.8


def test_forced_difficulty_and_logprobs_knob() -> None:
    assert ask("gpt-4o-mini", EASY, forced_difficulty=0.95).hedged
    no_logprobs = KNOBS["gpt-4o"].patched({"logprobs": False})
    assert (
        answer(no_logprobs, model="gpt-4o", question=EASY, conversation=EASY, seed=0, want_logprobs=True).token_probs
        is None
    )


def test_replayed_text_is_served_verbatim() -> None:
    reply = ask("gpt-4o-mini", HARD, replay_text="Recorded answer.")
    assert (reply.text, reply.source, reply.hedged) == ("Recorded answer.", "replay", False)


def test_prompt_tokens_are_about_four_characters_each() -> None:
    assert count_prompt_tokens(["x" * 400]) == 3 + 4 + 100
    assert count_prompt_tokens(["a" * 40, "b" * 80]) > count_prompt_tokens(["a" * 40])


def test_logprob_entries_shape() -> None:
    entries = logprob_entries(["Hi", " there"], [0.9, 0.2], top=3)
    assert [e["token"] for e in entries] == ["Hi", " there"]
    assert math.isclose(entries[1]["logprob"], math.log(0.2))
    assert entries[1]["bytes"] == list(b" there")
    for entry in entries:
        tops = entry["top_logprobs"]
        assert len(tops) == 3
        assert entry["token"] in [t["token"] for t in tops]
        assert [t["logprob"] for t in tops] == sorted((t["logprob"] for t in tops), reverse=True)
        assert sum(math.exp(t["logprob"]) for t in tops) <= 1.0 + 1e-9
