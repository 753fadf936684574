"""The rate decision (GCRA) as plain code: bursts, the steady rate, the wait a refusal names, both limits."""

from __future__ import annotations

from modelyard_core.ratelimit import MINUTE_US, RateLimitSettings, TierRate, decide
from modelyard_events import Tier

RATE = TierRate(requests_per_minute=6, tokens_per_minute=600)
S = 1_000_000  # µs


def run(times_s: list[float], tokens: int = 10, rate: TierRate = RATE) -> list[tuple[bool, float]]:
    tat_r = tat_t = 0
    out = []
    for t in times_s:
        d = decide(tat_r, tat_t, int(t * S), tokens, rate)
        if d.allowed:
            tat_r, tat_t = d.tat_requests_us, d.tat_tokens_us
        out.append((d.allowed, d.retry_after_s))
    return out


def test_a_minutes_allowance_may_come_at_once_then_the_rate():
    burst = run([100.0] * 8)
    assert [a for a, _ in burst] == [True] * 6 + [False] * 2
    assert burst[6][1] == 10.0  # one request every 10 s at 6 per minute
    # After the burst: one more every 10 s, never faster.
    steady = run([100.0] * 6 + [105.0, 110.0, 115.0, 120.0, 129.9, 130.0])
    assert [a for a, _ in steady][6:] == [False, True, False, True, False, True]


def test_tokens_are_a_second_limit_and_both_or_neither_are_charged():
    out = run([0.0, 0.0, 0.0, 0.0], tokens=250)  # 600 tokens a minute: two such requests at once
    assert [a for a, _ in out] == [True, True, False, False]
    assert out[2][1] == 15.0  # 10 tokens a second: the third (750 in all) fits once 150 have drained
    d = decide(0, 0, 0, 700, RATE)  # above a whole minute's tokens: passes on an empty bucket only
    assert d.allowed and d.tat_tokens_us - 0 > MINUTE_US
    refused = decide(d.tat_requests_us, d.tat_tokens_us, 1 * S, 700, RATE)
    assert not refused.allowed and refused.limit == "tokens" and refused.retry_after_us == d.tat_tokens_us - 1 * S
    assert (refused.tat_requests_us, refused.tat_tokens_us) == (d.tat_requests_us, d.tat_tokens_us)


def test_the_state_depends_on_the_queries_times_only():
    times = [0.0, 0.5, 1.0, 30.0, 30.1, 30.2, 30.3, 30.4, 30.5, 30.6]
    assert run(times) == run(times)  # a replay decides the same
    # Three used by 1 s had drained by 30 s: six more pass, the tenth waits for its 10 s slot.
    assert run(times) == [(True, 0.0)] * 9 + [(False, 9.4)]


def test_settings_estimate_tokens_like_openai():
    limits = RateLimitSettings(answer_allowance_tokens=100, chars_per_token=4)
    assert limits.tokens_of(["x" * 10, "y" * 4]) == 3 + 1 + 100
    assert limits.rate(Tier.BASIC).requests_per_minute == 1_000
