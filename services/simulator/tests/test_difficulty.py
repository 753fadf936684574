from modelyard_simulator import difficulty


def test_same_prompt_same_difficulty_within_bounds() -> None:
    prompts = ["", "hello", "How do I reset my password?", "Design a multi-region disaster recovery architecture " * 40]
    for prompt in prompts:
        value = difficulty(prompt)
        assert 0.0 <= value <= 1.0
        assert difficulty(prompt) == value


def test_analysis_and_design_are_harder_than_lookups() -> None:
    easy = ["What is the status of ticket 4411?", "How do I reset my password?", "Please unlock my login"]
    hard = [
        "Perform a root-cause analysis of yesterday's outage of the payments API after the deploy",
        "Design a disaster recovery plan for our multi-region database",
        "Compare the trade-offs of two failover strategies for a distributed queue",
    ]
    assert max(difficulty(p) for p in easy) < 0.3
    assert min(difficulty(p) for p in hard) > 0.6


def test_longer_prompts_are_harder() -> None:
    short = "Summarise the meeting notes"
    long = short + " " + " ".join(f"item{i} was discussed at length" for i in range(30))
    assert difficulty(long) > difficulty(short) + 0.1


def test_hash_jitter_spreads_prompts_with_the_same_keywords() -> None:
    values = {difficulty(f"What is the status of order {n}?") for n in range(50)}
    assert len(values) > 25
