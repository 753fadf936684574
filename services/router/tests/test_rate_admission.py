"""Rate limits inside the router's admission state (pure): decided with the quota, recorded with the
partition's counts, replayed identically, carried to the next owner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard_core.ratelimit import RateLimitSettings, TierRate
from modelyard_events import TIER_LIMITS, Industry, QuerySubmitted, RejectCode, TenantSnapshot, Tier
from modelyard_router.admission_state import PartitionDay
from modelyard_router.service import Router
from modelyard_router.settings import RouterSettings

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TENANT = TenantSnapshot(tenant_id="t1", version=1, name="t1", tier=Tier.BASIC, industry=Industry.OTHER,
                        limits=TIER_LIMITS[Tier.BASIC])


def router(rpm: int = 3, tpm: int = 1_000_000) -> Router:
    limits = RateLimitSettings(tiers={Tier.BASIC: TierRate(requests_per_minute=rpm, tokens_per_minute=tpm)})
    return Router(RouterSettings(rate_limits=limits), None, None, None, None)  # type: ignore[arg-type] - only settings are used


def query(at: datetime, text: str = "What is the status of ticket #1?") -> QuerySubmitted:
    return QuerySubmitted(tenant_id="t1", query_id=f"q-{at.timestamp()}", text=text, time=at)


def test_rate_refusals_name_the_limit_and_the_wait_and_replay_the_same():
    r, state = router(rpm=3), PartitionDay(0, "2026-11-26")
    verdicts = [state.admit("t1", i, 1_000, rate=r._rate_check(query(T0 + timedelta(seconds=i)), TENANT)) for i in range(5)]
    assert [v.admitted for v in verdicts] == [True, True, True, False, False]
    assert verdicts[3].code is RejectCode.RATE_LIMITED
    assert verdicts[3].reason == "rate limit of 3 requests per minute (basic tier) exceeded"
    assert (verdicts[3].retry_after_s, verdicts[4].retry_after_s) == (17.0, 16.0)  # one every 20 s: at 20 s it fits
    assert state.count("t1") == 3  # refused requests do not count against the daily quota
    replayed = state.admit("t1", 3, 1_000, rate=r._rate_check(query(T0), TENANT))
    assert (replayed.code, replayed.reason) == (verdicts[3].code, verdicts[3].reason)
    assert len(state.refused) == 1  # one run: the reason does not carry the wait


def test_the_rate_state_travels_with_the_partition():
    r, state = router(rpm=2), PartitionDay(0, "2026-11-26")
    for i in range(2):
        assert state.admit("t1", i, 1_000, rate=r._rate_check(query(T0), TENANT)).admitted
    restored = PartitionDay.from_doc(state.as_doc(), state.day)  # as stored, then read by another router
    moved = state.moved()  # or taken over
    for other in (restored, moved):
        assert not other.admit("t1", 2, 1_000, rate=r._rate_check(query(T0 + timedelta(seconds=1)), TENANT)).admitted
        assert other.admit("t1", 3, 1_000, rate=r._rate_check(query(T0 + timedelta(seconds=30)), TENANT)).admitted


def test_the_quota_is_checked_before_the_rate_and_tokens_count():
    r, state = router(rpm=100, tpm=300), PartitionDay(0, "2026-11-26")
    long_text = "x" * 400  # 100 tokens + the answer's 256 allowance: above 300 a minute, passes on an empty bucket only
    assert state.admit("t1", 0, 1_000, rate=r._rate_check(query(T0, long_text), TENANT)).admitted
    refused = state.admit("t1", 1, 1_000, rate=r._rate_check(query(T0, long_text), TENANT))
    assert refused.code is RejectCode.RATE_LIMITED and "300 tokens per minute" in refused.reason
    over_quota = state.admit("t1", 2, 1, rate=r._rate_check(query(T0 + timedelta(hours=1)), TENANT))
    assert over_quota.code is RejectCode.QUOTA
