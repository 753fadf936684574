"""Quota admission: replay semantics of ``Counter.admit`` and the refusal messages (pure, no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from modelyard_events import TIER_LIMITS, Industry, RejectCode, TenantSnapshot, TenantStatus, Tier, TierLimits
from modelyard_router.admission import Counter, Verdict, utc_day
from modelyard_router.service import quota_refusal, upgrade_for

P = 3  # a partition


def counter() -> Counter:
    return Counter("t1|2025-03-01", "t1", "2025-03-01")


def run(c: Counter, offsets, limit: int, partition: int = P, **kw) -> list[bool]:
    return [c.admit(partition, o, limit, **kw).admitted for o in offsets]


def test_admits_up_to_the_limit_then_refuses_with_the_quota_code():
    c = counter()
    verdicts = [c.admit(P, o, 3) for o in range(5)]
    assert [v.admitted for v in verdicts] == [True, True, True, False, False]
    assert c.count == 3
    assert {v.code for v in verdicts[3:]} == {RejectCode.QUOTA}
    assert "limit of 3" in verdicts[3].reason


def test_a_redelivered_batch_gets_the_same_verdicts_and_counts_nothing_twice():
    c = counter()
    first = [c.admit(P, o, 3) for o in range(10, 15)]
    count = c.count
    again = [c.admit(P, o, 3) for o in range(10, 15)]
    assert again == first
    assert c.count == count == 3


def test_a_redelivery_through_a_stored_copy_replays_the_same_verdicts():
    c = counter()
    first = run(c, range(0, 6), 4)
    stored = Counter.from_doc({"_id": c.key, "seq": 7, **c.as_doc()})
    # The batch comes again after a crash, with more records behind it.
    assert run(stored, range(0, 6), 4) == first
    assert run(stored, range(6, 8), 4) == [False, False]
    assert stored.count == 4 and stored.seq == 7


def test_a_rise_in_the_limit_resumes_admissions_without_changing_earlier_verdicts():
    c = counter()
    assert run(c, range(0, 4), 2) == [True, True, False, False]
    # Tier upgrade: the limit grows to 4; the next records are admitted ...
    assert run(c, range(4, 7), 4) == [True, True, False]
    assert c.count == 4
    # ... and a redelivery of the whole stretch still gets what it got the first time.
    assert run(c, range(0, 7), 4) == [True, True, False, False, True, True, False]
    assert c.count == 4


def test_a_limit_lowered_below_the_count_refuses_the_rest_of_the_day():
    c = counter()
    assert run(c, range(0, 5), 10) == [True] * 5
    assert run(c, range(5, 7), 3) == [False, False]
    assert c.count == 5


def test_a_refusal_other_than_quota_is_recorded_and_replayed_even_if_the_reason_is_gone():
    c = counter()
    suspended = Verdict(RejectCode.SUSPENDED, "tenant 't1' is suspended")
    assert run(c, range(0, 2), 10) == [True, True]
    assert [c.admit(P, o, 10, refusal=suspended) for o in (2, 3)] == [suspended, suspended]
    assert c.count == 2  # a refused query does not use quota
    # Reactivated between the first delivery and the redelivery: the verdicts stay as published.
    assert [c.admit(P, o, 10) for o in range(0, 5)] == [Verdict(), Verdict(), suspended, suspended, Verdict()]


def test_offsets_of_other_tenants_in_between_do_not_split_a_refused_run():
    c = counter()
    offsets = [0, 7, 9, 15, 40]  # this tenant's records; other tenants' records lie in between
    assert run(c, offsets, 2) == [True, True, False, False, False]
    assert len(c.refused) == 1 and (c.refused[0].first, c.refused[0].last) == (9, 40)
    assert [c.admit(P, o, 2).admitted for o in offsets] == [True, True, False, False, False]


def test_partitions_are_tracked_apart():
    # After a repartitioning, a tenant's records arrive on another partition with offsets of their own.
    c = counter()
    assert run(c, range(100, 103), 4, partition=0) == [True, True, True]
    assert run(c, range(0, 3), 4, partition=5) == [True, False, False]
    assert run(c, range(100, 103), 4, partition=0) == [True, True, True]
    assert run(c, range(0, 3), 4, partition=5) == [True, False, False]
    assert c.count == 4


def test_a_new_record_marks_the_counter_dirty_and_a_replay_does_not():
    c = counter()
    c.admit(P, 0, 5)
    assert c.dirty
    c.dirty = False
    c.admit(P, 0, 5)
    assert not c.dirty


def test_the_day_is_the_utc_day_of_submission():
    late_in_berlin = datetime(2025, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert utc_day(late_in_berlin) == "2025-02-28"
    assert utc_day(datetime(2025, 3, 1, 23, 59, tzinfo=UTC)) == "2025-03-01"
    assert utc_day(datetime(2025, 3, 1, 23, 59)) == "2025-03-01"  # naive: taken as UTC


# --- refusal messages --------------------------------------------------------------------------------


def snapshot(tier: Tier, limits: TierLimits | None = None) -> TenantSnapshot:
    return TenantSnapshot(tenant_id="t1", version=1, name="T1", tier=tier, industry=Industry.TECH,
                          status=TenantStatus.ACTIVE, limits=limits or TIER_LIMITS[tier])


@pytest.mark.parametrize(("tier", "needed", "expected"), [
    (Tier.BASIC, 1_001, Tier.PROFESSIONAL),
    (Tier.BASIC, 10_001, Tier.ENTERPRISE),
    (Tier.PROFESSIONAL, 10_001, Tier.ENTERPRISE),
    (Tier.ENTERPRISE, 100_001, None),
    (Tier.BASIC, 1_000_000, None),
])
def test_the_suggested_tier_is_the_cheapest_higher_one_that_fits(tier, needed, expected):
    assert upgrade_for(tier, needed) == expected


def test_quota_message_names_the_limit_the_tier_the_day_and_the_tier_that_fits():
    c = counter()
    limit = TIER_LIMITS[Tier.BASIC].api_calls_per_day
    c.count = limit
    v = quota_refusal(snapshot(Tier.BASIC), c, limit)
    assert v.code is RejectCode.QUOTA
    assert "daily API call limit of 1,000 (basic tier)" in v.reason
    assert c.day in v.reason
    assert "the professional tier allows 10,000 calls per day" in v.reason


def test_quota_message_never_suggests_a_downgrade():
    # An enterprise tenant on a custom limit of 500: basic would "fit" 501 calls, but it is no upgrade.
    custom = TIER_LIMITS[Tier.ENTERPRISE].model_copy(update={"api_calls_per_day": 500})
    c = counter()
    v = quota_refusal(snapshot(Tier.ENTERPRISE, custom), c, 500)
    assert "limit of 500 (enterprise tier)" in v.reason
    assert "no higher tier allows more" in v.reason
    assert "basic" not in v.reason


def test_quota_message_after_a_downgrade_fits_the_calls_already_made():
    # Downgraded to basic after 5,000 admissions today: professional (10,000) fits, not basic.
    c = counter()
    c.count = 5_000
    v = quota_refusal(snapshot(Tier.BASIC), c, 1_000)
    assert "the professional tier allows 10,000" in v.reason
    c.count = 20_000
    assert "the enterprise tier allows 100,000" in quota_refusal(snapshot(Tier.BASIC), c, 1_000).reason


def test_counter_admit_uses_the_quota_message_it_is_given():
    c = counter()
    limit = 1
    t = snapshot(Tier.BASIC)
    verdicts = [c.admit(P, o, limit, quota_refusal=lambda ctr, lim: quota_refusal(t, ctr, lim)) for o in range(2)]
    assert verdicts[0].admitted
    assert verdicts[1].code is RejectCode.QUOTA and "limit of 1 (basic tier)" in verdicts[1].reason
