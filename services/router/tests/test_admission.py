"""Quota admission: replay semantics of ``PartitionDay.admit`` and the refusal messages (pure, no store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from modelyard_events import TIER_LIMITS, Industry, RejectCode, TenantSnapshot, TenantStatus, Tier, TierLimits
from modelyard_router.admission import OwnerDay, PartitionDay, Verdict, utc_day
from modelyard_router.service import quota_refusal, upgrade_for

T = "t1"  # a tenant
DAY = "2025-03-01"


def document() -> PartitionDay:
    return PartitionDay(3, DAY)


def run(doc: PartitionDay, offsets, limit: int, tenant: str = T, **kw) -> list[bool]:
    return [doc.admit(tenant, o, limit, **kw).admitted for o in offsets]


def test_admits_up_to_the_limit_then_refuses_with_the_quota_code():
    doc = document()
    verdicts = [doc.admit(T, o, 3) for o in range(5)]
    assert [v.admitted for v in verdicts] == [True, True, True, False, False]
    assert doc.count(T) == 3
    assert {v.code for v in verdicts[3:]} == {RejectCode.QUOTA}
    assert "limit of 3" in verdicts[3].reason


def test_tenants_of_one_partition_are_counted_apart():
    doc = document()
    assert [doc.admit(t, o, 2).admitted for o, t in enumerate(["a", "b", "a", "b", "a", "c", "b"])] == [
        True, True, True, True, False, True, False]
    assert (doc.count("a"), doc.count("b"), doc.count("c"), doc.count("d")) == (2, 2, 1, 0)


def test_a_redelivered_batch_gets_the_same_verdicts_and_counts_nothing_twice():
    doc = document()
    first = [doc.admit(T, o, 3) for o in range(10, 15)]
    count = doc.count(T)
    again = [doc.admit(T, o, 3) for o in range(10, 15)]
    assert again == first
    assert doc.count(T) == count == 3


def test_a_redelivery_through_a_stored_copy_replays_the_same_verdicts():
    doc = document()
    first = run(doc, range(0, 6), 4)
    run(doc, [6, 8], 10, tenant="other")
    stored = PartitionDay.from_doc(doc.as_doc(), DAY)
    # The batch comes again after a crash, with more records behind it.
    assert run(stored, range(0, 6), 4) == first
    assert run(stored, [6, 8], 10, tenant="other") == [True, True]
    assert run(stored, [9, 10], 4) == [False, False]
    assert stored.count(T) == 4 and stored.count("other") == 2


def test_a_rise_in_the_limit_resumes_admissions_without_changing_earlier_verdicts():
    doc = document()
    assert run(doc, range(0, 4), 2) == [True, True, False, False]
    # Tier upgrade: the limit grows to 4; the next records are admitted ...
    assert run(doc, range(4, 7), 4) == [True, True, False]
    assert doc.count(T) == 4
    # ... and a redelivery of the whole stretch still gets what it got the first time.
    assert run(doc, range(0, 7), 4) == [True, True, False, False, True, True, False]
    assert doc.count(T) == 4


def test_a_limit_lowered_below_the_count_refuses_the_rest_of_the_day():
    doc = document()
    assert run(doc, range(0, 5), 10) == [True] * 5
    assert run(doc, range(5, 7), 3) == [False, False]
    assert doc.count(T) == 5


def test_a_refusal_other_than_quota_is_recorded_and_replayed_even_if_the_reason_is_gone():
    doc = document()
    suspended = Verdict(RejectCode.SUSPENDED, "tenant 't1' is suspended")
    assert run(doc, range(0, 2), 10) == [True, True]
    assert [doc.admit(T, o, 10, refusal=suspended) for o in (2, 3)] == [suspended, suspended]
    assert doc.count(T) == 2  # a refused query does not use quota
    # Reactivated between the first delivery and the redelivery: the verdicts stay as published.
    assert [doc.admit(T, o, 10) for o in range(0, 5)] == [Verdict(), Verdict(), suspended, suspended, Verdict()]


def test_offsets_of_other_tenants_in_between_do_not_split_a_refused_run():
    doc = document()
    offsets = [0, 7, 9, 15, 40]  # this tenant's records
    for o in range(41):
        doc.admit(T if o in offsets else f"x{o % 3}", o, 2 if o in offsets else 100)
    runs = [r for r in doc.refused if r.tenant_id == T]
    assert len(runs) == 1 and (runs[0].first, runs[0].last) == (9, 40)
    assert [doc.admit(T, o, 2).admitted for o in offsets] == [True, True, False, False, False]
    # A record of another tenant inside the run's span is not taken for a refused one.
    assert doc.recorded("x1", 10) == Verdict()


def test_a_new_record_marks_the_document_dirty_and_a_replay_does_not():
    doc = document()
    doc.admit(T, 0, 5)
    assert doc.dirty
    doc.dirty = False
    doc.admit(T, 0, 5)
    assert not doc.dirty


def test_the_storage_form_keeps_tenant_ids_out_of_field_names():
    doc = document()
    doc.admit("acme.eu$1", 0, 5)
    stored = doc.as_doc()
    assert stored["tenants"] == [{"t": "acme.eu$1", "n": 1, "last": 0}]
    assert PartitionDay.from_doc(stored, DAY).count("acme.eu$1") == 1


def test_a_moved_state_continues_under_the_next_epoch_without_sharing_anything():
    doc = document()
    run(doc, range(0, 3), 2)
    moved = doc.moved()
    assert (moved.epoch, moved.position, moved.count(T), moved.dirty) == (2, 2, 2, True)
    assert run(moved, range(0, 4), 2) == [True, True, False, False]
    moved.admit("other", 9, 5)
    assert "other" not in doc.tenants and doc.position == 2


def written(doc: OwnerDay, seq: int, body: dict) -> dict:
    """What the store appends for ``body``, and the in-memory bookkeeping of a successful write."""
    entry = doc.entry(seq, "queries.submitted", body)
    doc.seq = seq
    for state in doc.parts.values():
        state.written()
    return entry


def test_a_log_entry_holds_only_what_the_batch_changed_and_folding_the_log_gives_the_state_back():
    doc = OwnerDay("k", DAY)
    doc.take(PartitionDay(3, DAY, dirty=True, whole=True))
    state = doc.parts[3]
    for i in range(300):
        state.admit(f"t{i}", i, 1)
    log = [written(doc, 1, doc.change_body())]
    state.admit("t7", 300, 1)  # refused: over its limit of one
    state.admit("t8", 301, 5)
    change = doc.change_body()
    assert sorted(e["t"] for e in change["partitions"][0]["tenants"]) == ["t7", "t8"]  # not all 300
    assert len(change["partitions"][0]["refused"]) == 1
    log.append(written(doc, 2, change))
    state.admit("t9", 302, 5)
    assert "refused" not in doc.change_body()["partitions"][0]  # runs unchanged: not repeated
    log.append(written(doc, 3, doc.change_body()))
    folded = OwnerDay.fold("k", DAY, reversed(log))  # the store returns entries in any order
    again = folded.parts[3]
    assert folded.seq == 3 and again.position == 302
    assert {t: (c.count, c.last) for t, c in again.tenants.items()} == {t: (c.count, c.last) for t, c in state.tenants.items()}
    assert again.recorded("t7", 300) == state.recorded("t7", 300) and not again.recorded("t7", 300).admitted


def test_a_snapshot_replaces_everything_before_it_and_a_fence_is_lifted_by_taking_the_partition_back():
    doc = OwnerDay("k", DAY)
    doc.take(PartitionDay(1, DAY, dirty=True, whole=True))
    doc.parts[1].admit(T, 0, 5)
    log = [written(doc, 1, doc.change_body())]
    log.append(doc.entry(2, "queries.submitted", {"fenced": [{"p": 1, "to": "other"}]}))  # another router took 1
    folded = OwnerDay.fold("k", DAY, log)
    assert not folded.owns(1) and folded.parts[1].count(T) == 1  # the state stays: the taker may not have written
    folded.take(folded.parts[1].moved())  # taken back
    folded.parts[1].admit(T, 1, 5)
    log.append(written(folded, 3, folded.change_body()))
    assert OwnerDay.fold("k", DAY, log).owns(1)
    folded.take(PartitionDay(2, DAY, dirty=True, whole=True))
    folded.parts[2].admit("b", 0, 5)
    log.append(written(folded, 4, folded.snapshot_body()))
    # Entries before a snapshot may still be there (their deletion follows it) or be gone: same state.
    for entries in (log, log[3:], [{"seq": 1, "partitions": [{"p": 9, "epoch": 1, "position": 0, "whole": True}]}, log[3]]):
        state = OwnerDay.fold("k", DAY, entries)
        assert (state.seq, state.snapshot_seq, sorted(state.parts), state.fenced) == (4, 4, [1, 2], {})
        assert state.parts[1].count(T) == 2 and state.parts[1].epoch == 2 and state.parts[2].count("b") == 1


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
    limit = TIER_LIMITS[Tier.BASIC].api_calls_per_day
    v = quota_refusal(snapshot(Tier.BASIC), DAY, limit, limit)
    assert v.code is RejectCode.QUOTA
    assert "daily API call limit of 1,000 (basic tier)" in v.reason
    assert DAY in v.reason
    assert "the professional tier allows 10,000 calls per day" in v.reason


def test_quota_message_never_suggests_a_downgrade():
    # An enterprise tenant on a custom limit of 500: basic would "fit" 501 calls, but it is no upgrade.
    custom = TIER_LIMITS[Tier.ENTERPRISE].model_copy(update={"api_calls_per_day": 500})
    v = quota_refusal(snapshot(Tier.ENTERPRISE, custom), DAY, 0, 500)
    assert "limit of 500 (enterprise tier)" in v.reason
    assert "no higher tier allows more" in v.reason
    assert "basic" not in v.reason


def test_quota_message_after_a_downgrade_fits_the_calls_already_made():
    # Downgraded to basic after 5,000 admissions today: professional (10,000) fits, not basic.
    v = quota_refusal(snapshot(Tier.BASIC), DAY, 5_000, 1_000)
    assert "the professional tier allows 10,000" in v.reason
    assert "the enterprise tier allows 100,000" in quota_refusal(snapshot(Tier.BASIC), DAY, 20_000, 1_000).reason


def test_admit_uses_the_quota_message_it_is_given():
    doc = document()
    t = snapshot(Tier.BASIC)
    verdicts = [doc.admit(T, o, 1, quota_refusal=lambda n, lim: quota_refusal(t, doc.day, n, lim)) for o in range(2)]
    assert verdicts[0].admitted
    assert verdicts[1].code is RejectCode.QUOTA and "limit of 1 (basic tier)" in verdicts[1].reason
