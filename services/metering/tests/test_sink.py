"""The metering sink against the real MongoDB-protocol server (FerretDB in CI): exactly once.

Each test has a database of its own. Deliveries are built the way the bus hands them to the
handler: decoded events with their Kafka topic, partition and offset.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord
from modelyard_core.bus import Delivery
from modelyard_events import TIER_LIMITS, Industry, TenantSnapshot, Tier, UsageRecorded

from modelyard_metering import sink as sink_module
from modelyard_metering.alerts import due_alerts
from modelyard_metering.sink import SEEN, UsageConflict, UsageSink
from modelyard_usage import DAILY, MONTHLY, TENANT_DAILY, nano_usd

pytestmark = pytest.mark.system

TOPIC = "usage.recorded"
WHEN = datetime(2025, 3, 4, 12, tzinfo=UTC)


def call(tenant: str, i: int, **kw) -> UsageRecorded:
    fields = dict(tenant_id=tenant, query_id=f"{tenant}-q{i}", model="gpt-4o-mini" if i % 3 else "gpt-4o",
                  model_class="slm" if i % 3 else "llm", agent_id=f"agent{i % 2}", input_tokens=100 + i,
                  output_tokens=10 + i % 7, cost_usd=(1 + i % 5) * 1.37e-5, llm_cost_usd=4.1e-4, latency_ms=20 + i % 50,
                  time=WHEN)
    fields.update(kw)
    return UsageRecorded(**fields)


def deliver(events: list[UsageRecorded], first_offset: int = 0, partition: int = 0,
            offsets: list[int] | None = None) -> list[Delivery[UsageRecorded]]:
    offsets = offsets or list(range(first_offset, first_offset + len(events)))
    return [Delivery(e, ConsumerRecord(TOPIC, partition, o, 0, 0, e.tenant_id.encode(), b"", None, 0, 0, ()), {})
            for e, o in zip(events, offsets, strict=True)]


async def docs(db, coll: str) -> dict[str, dict]:
    return {d["_id"]: d async for d in db[coll].find({})}


async def totals(db, tenant: str) -> tuple[int, int, int, int]:
    """(calls, queries, tokens, nano-dollars) of a tenant, from its per-model daily documents."""
    rows = [d async for d in db[DAILY].find({"tenant_id": tenant})]
    return (sum(d["calls"] for d in rows), sum(d["queries"] for d in rows),
            sum(d["input_tokens"] + d["output_tokens"] for d in rows), sum(d["cost_nusd"] for d in rows))


def expected(events: list[UsageRecorded]) -> tuple[int, int, int, int]:
    unique = {e.event_id: e for e in events}.values()
    return (len(unique), sum(not e.cascade_step for e in unique), sum(e.input_tokens + e.output_tokens for e in unique),
            sum(nano_usd(e.cost_usd) for e in unique))


def counters(documents: dict[str, dict]) -> dict[str, tuple]:
    """What a replay must not change: every document's counters and watermark."""
    return {k: (d["calls"], d["input_tokens"], d["cost_nusd"], d["wm"], d.get("latency_le")) for k, d in documents.items()}


async def test_one_flush_writes_each_document_once_with_watermark(db):
    sink = UsageSink(db)
    events = [call("acme", i) for i in range(60)]
    result = await sink.apply(deliver(events))
    assert (result.counted, result.replayed, result.duplicates) == (60, 0, 0)
    assert await totals(db, "acme") == expected(events)
    daily, tenant_day, monthly = await docs(db, DAILY), await docs(db, TENANT_DAILY), await docs(db, MONTHLY)
    assert set(daily) == {"acme|2025-03-04|gpt-4o-mini", "acme|2025-03-04|gpt-4o"}
    assert tenant_day["acme|2025-03-04"]["calls"] == monthly["acme|2025-03"]["calls"] == 60
    assert tenant_day["acme|2025-03-04"]["wm"] == {"0": 59} and tenant_day["acme|2025-03-04"]["v"] == 1
    assert sum(d["calls"] for d in (await docs(db, sink_module.AGENTS)).values()) == 60
    # One metering.usage message per touched tenant-day: delta == totals on the first flush.
    [usage] = result.usage
    assert usage.delta == usage.totals and usage.totals.calls == 60
    assert usage.totals.cost_usd == expected(events)[3] / 1e9


async def test_replayed_batch_changes_nothing(db):
    events = [call("acme", i) for i in range(50)] + [call("globex", i) for i in range(30)]
    first = await UsageSink(db).apply(deliver(events))
    before = {c: counters(await docs(db, c)) for c in (DAILY, TENANT_DAILY, MONTHLY)}

    # A restarted process (cold) gets the same batch again, and again after a rewind.
    restarted = UsageSink(db)
    for sink in (restarted, restarted):
        again = await sink.apply(deliver(events))
        assert (again.counted, again.replayed, again.documents) == (0, 80, 0)
        assert {c: counters(await docs(db, c)) for c in (DAILY, TENANT_DAILY, MONTHLY)} == before
        # What the first flush emitted is emitted again, identical (its publication may have been lost).
        assert again.usage == first.usage
    assert await totals(db, "acme") == expected(events[:50])


async def test_replay_with_other_batch_boundaries_is_exact(db):
    events = [call("acme", i) for i in range(100)]
    sink = UsageSink(db)
    await sink.apply(deliver(events[:40]))
    await sink.apply(deliver(events[40:70], 40))
    # Crash; the replay starts at the committed offset 40 and is cut differently.
    restarted = UsageSink(db)
    r1 = await restarted.apply(deliver(events[40:55], 40))
    r2 = await restarted.apply(deliver(events[55:100], 55))
    assert (r1.counted, r1.replayed) == (0, 15)
    assert (r2.counted, r2.replayed) == (30, 15)
    assert await totals(db, "acme") == expected(events)


async def test_duplicate_ids_at_other_offsets_are_counted_once(db):
    events = [call("acme", i) for i in range(40)]
    sink = UsageSink(db)
    # Re-published copies in the same batch, in the next batch, and after a restart.
    first = await sink.apply(deliver(events + events[:5]))
    second = await sink.apply(deliver(events[5:20], 45))
    third = await UsageSink(db).apply(deliver(events[20:40] + [call("acme", 99)], 60))
    assert (first.counted, first.duplicates) == (40, 5)
    assert (second.counted, second.duplicates) == (0, 15)
    assert (third.counted, third.duplicates) == (1, 20)
    assert await totals(db, "acme") == expected([*events, call("acme", 99)])


async def test_crash_between_id_list_and_counters_replays_exactly(db, monkeypatch):
    events = [call("acme", i) for i in range(30)]
    sink = UsageSink(db)

    async def crash(self, pending):
        raise RuntimeError("killed after the id list, before the counters")

    monkeypatch.setattr(UsageSink, "_write", crash)
    with pytest.raises(RuntimeError):
        await sink.apply(deliver(events))
    monkeypatch.undo()
    assert await db[SEEN].count_documents({}) == 1  # the ids were recorded ...
    assert await db[DAILY].count_documents({}) == 0  # ... the counters were not
    # The replay carries the same offsets: replays, not duplicates.
    for s in (sink, UsageSink(db)):
        result = await s.apply(deliver(events))
        assert await totals(db, "acme") == expected(events)
    assert result.counted == 0


@pytest.mark.parametrize("kill_at", [1, 2, 4, 7])
async def test_crash_in_the_middle_of_the_document_writes_replays_exactly(db, monkeypatch, kill_at):
    """Killed after the journal, between the deletes and inserts of the old and new states."""
    events = [call(f"t{i % 12}", i) for i in range(240)]
    sink = UsageSink(db, write_chunk=4)
    real_command = type(db).command
    writes = Counter()

    async def dies_at_a_write(self, command, *args, **kwargs):
        if isinstance(command, dict) and ("insert" in command or "delete" in command):
            writes["n"] += 1
            if writes["n"] == kill_at:
                raise ConnectionError("process killed mid-flush")
        return await real_command(self, command, *args, **kwargs)

    first = [call(f"t{i % 12}", 1_000 + i) for i in range(24)]
    await sink.apply(deliver(first, 0))  # documents exist: the flush below replaces them
    monkeypatch.setattr(type(db), "command", dies_at_a_write)
    with pytest.raises(ConnectionError):
        await sink.apply(deliver(events, 24))
    monkeypatch.undo()
    assert await db[sink_module.JOURNAL].count_documents({}) == 1  # the flush is committed, not finished

    for s in (sink, UsageSink(db)):  # the same process retrying, then a restarted one
        await s.apply(deliver(events, 24))
        assert await db[sink_module.JOURNAL].count_documents({}) == 0
        for t in {e.tenant_id for e in events}:
            assert await totals(db, t) == expected([e for e in [*first, *events] if e.tenant_id == t])


async def test_crash_after_the_journal_before_any_document_write(db, monkeypatch):
    events = [call("acme", i) for i in range(50)]
    sink = UsageSink(db)
    await sink.apply(deliver(events[:10]))

    async def crash(self, entries, *, recovering):
        raise RuntimeError("killed right after the journal insert")

    monkeypatch.setattr(UsageSink, "_replace", crash)
    with pytest.raises(RuntimeError):
        await sink.apply(deliver(events[10:], 10))
    monkeypatch.undo()
    assert await totals(db, "acme") == expected(events[:10])  # nothing replaced yet
    # A restarted process finishes the journal before reading, then sees the batch as applied.
    restarted = UsageSink(db)
    again = await restarted.apply(deliver(events[10:], 10))
    assert (again.counted, again.replayed) == (0, 40)
    assert await totals(db, "acme") == expected(events)


async def test_warm_flush_reads_nothing_and_gaps_or_rewinds_go_cold(db):
    events = [call("acme", i) for i in range(90)]
    sink = UsageSink(db)
    first = await sink.apply(deliver(events[:30]))
    assert first.docs_read == 6  # 2 models + tenant-day + month + 2 agents, all new
    warm = await sink.apply(deliver(events[30:60], 30))
    assert warm.docs_read == 0 and warm.counted == 30
    # A gap: the partition went to another process for a while (60-69), then came back.
    await UsageSink(db).apply(deliver(events[60:70], 60))
    gap = await sink.apply(deliver(events[70:80], 70))
    assert gap.docs_read == 6 and gap.counted == 10  # cold: re-read, so the other owner's writes are seen
    # A rewind (a failed batch redelivered): cold, and what was applied is recognised.
    rewind = await sink.apply(deliver(events[60:90], 60))
    assert rewind.docs_read == 6 and (rewind.counted, rewind.replayed) == (10, 20)
    assert await totals(db, "acme") == expected(events)


async def test_a_second_writer_is_detected_and_the_retry_is_exact(db):
    """A zombie owner after a rebalance: its cached view is stale, its write must not apply."""
    events = [call("acme", i) for i in range(60)]
    zombie, owner = UsageSink(db), UsageSink(db)
    await zombie.apply(deliver(events[:20]))
    await owner.apply(deliver(events[:40]))  # the new owner replays 0-19 and goes on
    with pytest.raises(UsageConflict):
        await zombie.apply(deliver(events[20:40], 20))  # warm, but the documents moved on
    assert await totals(db, "acme") == expected(events[:40])
    retried = await zombie.apply(deliver(events[20:40], 20))  # cold now: reads, finds it applied
    assert (retried.counted, retried.replayed) == (0, 20)
    await owner.apply(deliver(events[40:], 40))
    assert await totals(db, "acme") == expected(events)


async def test_one_alert_per_threshold_and_the_same_alert_after_a_crash(db):
    snapshot = TenantSnapshot(tenant_id="acme", version=1, name="Acme", tier=Tier.BASIC, industry=Industry.TECH,
                              limits=TIER_LIMITS[Tier.BASIC])  # 1,000 API calls per day

    def policy(tenant_id, scope, period, totals, already):
        return due_alerts(snapshot, scope, period, totals, already) if tenant_id == "acme" else []

    events = [call("acme", i) for i in range(1_000)]
    sink = UsageSink(db, alert_policy=policy)
    alerts = []
    for lo in range(0, 700, 100):
        alerts += (await sink.apply(deliver(events[lo:lo + 100], lo))).alerts
    assert alerts == []
    crossing = await sink.apply(deliver(events[700:850], 700))  # 850 >= 800
    assert [(a.threshold_pct, a.value) for a in crossing.alerts] == [(80, 850)]

    # Killed before the 80% alert was published: the replay, cut differently, sends that same alert.
    replay = UsageSink(db, alert_policy=policy)
    again = await replay.apply(deliver(events[700:800], 700))
    assert again.alerts == crossing.alerts  # same id, same value, same time
    assert (again.counted, again.replayed) == (0, 100)
    later = await replay.apply(deliver(events[800:900], 800))
    assert later.alerts == []  # recorded in the document: not again this day
    last = await replay.apply(deliver(events[900:1000], 900))
    assert [(a.threshold_pct, a.value) for a in last.alerts] == [(100, 1000)]
    tenant_day = (await docs(db, TENANT_DAILY))["acme|2025-03-04"]
    assert set(tenant_day["alerted"]) == {"api_calls_per_day_80", "api_calls_per_day_100"}


async def test_outputs_re_sent_and_updated_in_one_flush_survive_another_crash(db):
    """Killed before publishing twice in a row: the second flush re-sends the first one's message
    and adds its own; if it dies before publishing, the next replay must re-send both."""
    events = [call("acme", i) for i in range(150)]
    first = await UsageSink(db).apply(deliver(events[:100]))  # killed before publishing
    second = await UsageSink(db).apply(deliver(events[:150]))  # replays 0-99, adds 100-149; killed again
    assert [m.event_id for m in second.usage][:1] == [m.event_id for m in first.usage]
    third = await UsageSink(db).apply(deliver(events[:150]))  # only replays: must re-send everything unsent
    assert {m.event_id for m in third.usage} == {m.event_id for m in first.usage + second.usage}
    unique = {m.event_id: m for m in third.usage}.values()
    assert sum(m.delta.calls for m in unique) == 150 == max(m.totals.calls for m in unique)


async def test_metering_usage_deltas_add_up_to_the_totals(db):
    events = [call("acme", i, time=WHEN.replace(hour=i % 24)) for i in range(120)]
    sink = UsageSink(db)
    messages = []
    for lo in range(0, 120, 25):
        messages += (await sink.apply(deliver(events[lo:lo + 25], lo))).usage
    assert len({m.event_id for m in messages}) == len(messages) == 5
    assert sum(m.delta.calls for m in messages) == messages[-1].totals.calls == 120
    assert sum(m.delta.input_tokens for m in messages) == messages[-1].totals.input_tokens


async def test_counters_past_32_bits_do_not_wrap_around(db):
    # 3 USD is 3e9 nano-dollars: int32 overflows on the second flush unless the counter is 64-bit.
    sink = UsageSink(db)
    await sink.apply(deliver([call("acme", 0, cost_usd=3.0, input_tokens=2_000_000_000)]))
    await sink.apply(deliver([call("acme", 1, cost_usd=3.0, input_tokens=2_000_000_000)], 1))
    doc = (await docs(db, TENANT_DAILY))["acme|2025-03-04"]
    assert doc["cost_nusd"] == 6_000_000_000 and doc["input_tokens"] == 4_000_000_000


async def test_expired_id_lists_are_pruned(db):
    sink = UsageSink(db, prune_interval_s=3600)
    await sink.apply(deliver([call("acme", i) for i in range(5)]))
    await sink.apply(deliver([call("acme", i) for i in range(5, 9)], 5))
    assert await db[SEEN].count_documents({}) == 2
    assert await sink.maybe_prune() == 0  # nothing expired yet
    await db[SEEN].update_many({"last_offset": 4}, {"$set": {"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}})
    assert await sink.maybe_prune() == 0  # pruned a moment ago: not again before the interval
    assert await sink.prune_seen() == 1
    assert await db[SEEN].count_documents({}) == 1


async def test_id_lists_below_a_full_window_are_pruned(db):
    sink = UsageSink(db, dedup_window=10)
    events = [call("acme", i) for i in range(40)]
    for lo in range(0, 40, 8):
        await sink.apply(deliver(events[lo:lo + 8], lo))
    assert await db[SEEN].count_documents({}) == 5
    assert await sink.prune_seen() == 3  # the window holds offsets 30-39: lists ending before 30 go
    assert sorted([d["last_offset"] async for d in db[SEEN].find({})]) == [31, 39]
    # A restart loads what is left: the window's ids are still recognised as duplicates.
    again = await UsageSink(db, dedup_window=10).apply(deliver(events[30:40], 40))
    assert again.duplicates == 10 and again.counted == 0

