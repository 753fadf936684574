"""Unit tests (no servers): the metering sink's exactly-once rules over an in-memory store.

``MemoryStore`` is an in-memory fake of ``ports.UsageStore`` with the adapter's guarantees (a
replacement deletes a document's state only while its version id is the expected one; an id list
is recorded once; the journal survives a crash) and a switch that makes one call fail, the way a
killed process or a lost database would. It proves the core's logic in milliseconds; the MongoDB
adapter is proven against the real server by ``test_sink.py`` and the system tests.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from aiokafka.structs import ConsumerRecord
from modelyard_core.bus import Delivery
from modelyard_events import TIER_LIMITS, Industry, TenantSnapshot, Tier, UsageRecorded

from modelyard_metering.alerts import due_alerts
from modelyard_metering.fold import nano_usd
from modelyard_metering.ledger import AGENTS, DAILY, MONTHLY, TENANT_DAILY
from modelyard_metering.sink import UsageConflict, UsageSink

NOON = datetime(2025, 5, 6, 12, tzinfo=UTC)


class Killed(ConnectionError):
    """What a store call raises when the test kills the process there."""


class MemoryStore:
    """In-memory ``UsageStore`` (see the module docstring)."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, dict]] = defaultdict(dict)
        self.id_lists: dict[tuple, tuple[str, int, list[tuple[str, int]]]] = {}
        self.journal: dict[str, str] = {}
        self.calls: list[str] = []
        self.fail_at: set[str] = set()

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail_at:
            self.fail_at.discard(name)
            raise Killed(f"killed at {name}")

    async def ensure_indexes(self) -> None:
        self._call("ensure_indexes")

    async def recent_ids(self, topic, partitions, limit):
        self._call("recent_ids")
        recent: dict[int, dict[str, int]] = {p: {} for p in partitions}
        loaded = dict.fromkeys(partitions, 0)
        for list_topic, partition, ids in sorted(self.id_lists.values(), key=lambda v: -v[2][-1][1]):
            if list_topic == topic and partition in recent and loaded[partition] < limit:
                for event_id, offset in ids:
                    recent[partition].setdefault(event_id, offset)
                loaded[partition] += len(ids)
        return recent

    async def record_ids(self, topic, partition, ids):
        self._call("record_ids")
        self.id_lists.setdefault((topic, partition, ids[0], ids[-1]), (topic, partition, list(ids)))

    async def read(self, collection, ids):
        self._call(f"read:{collection}")
        stored = self.collections[collection]
        return {i: copy.deepcopy(stored[i]) for i in ids if i in stored}

    async def begin(self, replacements):
        self._call("begin")
        journal_id = uuid.uuid4().hex
        self.journal[journal_id] = json.dumps(replacements)
        return [journal_id]

    async def replace(self, collection, replacements):
        self._call(f"replace:{collection}")
        stored = self.collections[collection]
        for r in replacements:
            if r["exists"] and stored.get(r["state"]["_id"], {}).get("vid") == r["prev"]:
                del stored[r["state"]["_id"]]
        conflicts = []
        for r in replacements:
            if r["state"]["_id"] in stored:
                conflicts.append(r["state"]["_id"])
            else:
                stored[r["state"]["_id"]] = copy.deepcopy(r["state"])
        return conflicts

    async def end(self, journal_ids):
        self._call("end")
        for journal_id in journal_ids:
            del self.journal[journal_id]

    async def journals(self):
        return [(journal_id, json.loads(entries)) for journal_id, entries in self.journal.items()]

    async def prune_ids(self, below):
        self._call("prune_ids")
        gone = [k for k, (topic, partition, ids) in self.id_lists.items()
                if (topic, partition) in below and ids[-1][1] < below[(topic, partition)]]
        for k in gone:
            del self.id_lists[k]
        return len(gone)


def usage(tenant: str, n: int, **changes) -> UsageRecorded:
    fields = dict(tenant_id=tenant, query_id=f"{tenant}/{n}", model="gpt-4o" if n % 4 == 0 else "gpt-4o-mini",
                  model_class="llm" if n % 4 == 0 else "slm", agent_id="triage" if n % 2 else None,
                  input_tokens=50 + n, output_tokens=5 + n % 9, cost_usd=2.5e-5 * (1 + n % 3), llm_cost_usd=3e-4,
                  latency_ms=15 + n % 40, time=NOON)
    return UsageRecorded(**{**fields, **changes})


def batch(events: list[UsageRecorded], start: int = 0, partition: int = 0) -> list[Delivery[UsageRecorded]]:
    return [Delivery(e, ConsumerRecord("usage.recorded", partition, start + i, 0, 0, None, b"", None, 0, 0, ()), {})
            for i, e in enumerate(events)]


def calls_and_cost(store: MemoryStore, tenant: str) -> tuple[int, int]:
    docs = [d for d in store.collections[DAILY].values() if d["tenant_id"] == tenant]
    return sum(d["calls"] for d in docs), sum(d["cost_nusd"] for d in docs)


def truth(events: list[UsageRecorded]) -> tuple[int, int]:
    once = {e.event_id: e for e in events}.values()
    return len(once), sum(nano_usd(e.cost_usd) for e in once)


async def test_a_flush_writes_every_document_once_and_emits_the_tenant_day():
    store = MemoryStore()
    events = [usage("acme", n) for n in range(40)]
    result = await UsageSink(store).apply(batch(events))
    assert (result.counted, result.replayed, result.duplicates, result.documents) == (40, 0, 0, 5)
    assert calls_and_cost(store, "acme") == truth(events)
    day = store.collections[TENANT_DAILY]["acme|2025-05-06"]
    assert day["wm"] == {"0": 39} and day["v"] == 1 and day["calls"] == 40
    assert store.collections[MONTHLY]["acme|2025-05"]["calls"] == 40
    assert store.collections[AGENTS]["acme|2025-05|triage"]["calls"] == 20
    [message] = result.usage
    assert message.delta == message.totals and message.totals.calls == 40
    # The storage calls come in the order of the steps.
    collections = [DAILY, TENANT_DAILY, MONTHLY, AGENTS]
    assert store.calls == ["recent_ids", *(f"read:{c}" for c in collections), "record_ids", "begin",
                           *(f"replace:{c}" for c in collections), "end"]


async def test_a_restarted_process_replaying_the_batch_changes_nothing_and_re_emits_the_same():
    store = MemoryStore()
    events = [usage("acme", n) for n in range(30)] + [usage("globex", n) for n in range(12)]
    first = await UsageSink(store).apply(batch(events))
    before = copy.deepcopy(dict(store.collections))
    again = await UsageSink(store).apply(batch(events))
    assert (again.counted, again.replayed, again.documents) == (0, 42, 0)
    assert dict(store.collections) == before
    assert again.usage == first.usage  # its publication may have been lost: sent again, identical


async def test_a_replay_cut_into_other_batches_is_exact():
    store, events = MemoryStore(), [usage("acme", n) for n in range(60)]
    sink = UsageSink(store)
    await sink.apply(batch(events[:25]))
    await sink.apply(batch(events[25:45], 25))
    restarted = UsageSink(store)
    r1 = await restarted.apply(batch(events[25:33], 25))
    r2 = await restarted.apply(batch(events[33:], 33))
    assert (r1.counted, r1.replayed, r2.counted, r2.replayed) == (0, 8, 15, 12)
    assert calls_and_cost(store, "acme") == truth(events)


async def test_an_id_seen_at_another_offset_is_a_duplicate_in_the_batch_later_and_after_a_restart():
    store, events = MemoryStore(), [usage("acme", n) for n in range(20)]
    sink = UsageSink(store)
    first = await sink.apply(batch(events + events[:3]))
    later = await sink.apply(batch(events[3:8], 23))
    restarted = await UsageSink(store).apply(batch(events[8:] + [usage("acme", 77)], 28))
    assert [(r.counted, r.duplicates) for r in (first, later, restarted)] == [(20, 3), (0, 5), (1, 12)]
    assert calls_and_cost(store, "acme") == truth([*events, usage("acme", 77)])


@pytest.mark.parametrize("killed_at", ["record_ids", "begin", "replace:usage_daily", "replace:usage_monthly", "end"])
async def test_a_flush_killed_at_any_step_is_finished_or_replayed_exactly(killed_at):
    store = MemoryStore()
    events = [usage(f"t{n % 5}", n) for n in range(100)]
    sink = UsageSink(store)
    await sink.apply(batch(events[:20]))  # documents exist: the killed flush replaces them
    store.fail_at = {killed_at}
    with pytest.raises(Killed):
        await sink.apply(batch(events[20:], 20))
    committed = killed_at not in ("record_ids", "begin")  # the journal is the commit point
    assert len(store.journal) == (1 if committed else 0)
    retried = await sink.apply(batch(events[20:], 20))  # cold: finishes the journal first, if there is one
    assert store.journal == {} and retried.counted == (0 if committed else 80)
    restarted = await UsageSink(store).apply(batch(events[20:], 20))
    assert (restarted.counted, restarted.replayed) == (0, 80)
    for t in {e.tenant_id for e in events}:
        assert calls_and_cost(store, t) == truth([e for e in events if e.tenant_id == t])


async def test_a_zombie_writer_conflicts_and_its_retry_reads_what_the_owner_wrote():
    store, events = MemoryStore(), [usage("acme", n) for n in range(45)]
    zombie, owner = UsageSink(store), UsageSink(store)
    await zombie.apply(batch(events[:15]))
    await owner.apply(batch(events[:30]))  # the new owner replays 0-14 and goes on
    with pytest.raises(UsageConflict):
        await zombie.apply(batch(events[15:30], 15))  # warm, but its cached states are stale
    assert calls_and_cost(store, "acme") == truth(events[:30])
    retried = await zombie.apply(batch(events[15:30], 15))  # cold now
    assert (retried.counted, retried.replayed) == (0, 15)
    await owner.apply(batch(events[30:], 30))
    assert calls_and_cost(store, "acme") == truth(events)


async def test_warm_flushes_read_nothing_and_a_gap_or_rewind_reads_again():
    store, events = MemoryStore(), [usage("acme", n) for n in range(60)]
    sink = UsageSink(store)
    first = await sink.apply(batch(events[:20]))
    warm = await sink.apply(batch(events[20:40], 20))
    assert (first.docs_read, warm.docs_read) == (5, 0)  # 2 models + day + month + 1 agent, then none
    await UsageSink(store).apply(batch(events[40:50], 40))  # another owner for a while
    gap = await sink.apply(batch(events[50:], 50))
    assert gap.docs_read == 5 and gap.counted == 10
    rewind = await sink.apply(batch(events[40:], 40))
    assert rewind.docs_read == 5 and (rewind.counted, rewind.replayed) == (0, 20)
    assert calls_and_cost(store, "acme") == truth(events)


async def test_the_document_cache_is_trimmed_after_a_flush_larger_than_itself():
    store = MemoryStore()
    events = [usage(f"t{n}", n) for n in range(30)]  # 30 tenants: about 110 documents
    sink = UsageSink(store, doc_cache_size=10)
    result = await sink.apply(batch(events))
    assert result.counted == 30 and len(sink.ledger.docs) == 10
    # The most recently used are kept; the rest are read again when touched.
    again = await sink.apply(batch([usage("t0", 100)], 30))
    assert again.docs_read > 0 and calls_and_cost(store, "t0")[0] == 2


async def test_an_alert_is_sent_once_and_the_same_alert_after_a_crash_before_publishing():
    snapshot = TenantSnapshot(tenant_id="acme", version=1, name="Acme", tier=Tier.BASIC, industry=Industry.TECH,
                              limits=TIER_LIMITS[Tier.BASIC])  # 1,000 API calls per day

    def policy(tenant_id, scope, period, totals, already):
        return due_alerts(snapshot, scope, period, totals, already)

    store = MemoryStore()
    events = [usage("acme", n, agent_id=None) for n in range(1_000)]
    sink = UsageSink(store, alert_policy=policy)
    assert (await sink.apply(batch(events[:790]))).alerts == []
    crossing = await sink.apply(batch(events[790:820], 790))
    assert [(a.threshold_pct, a.value) for a in crossing.alerts] == [(80, 820)]
    replay = UsageSink(store, alert_policy=policy)  # killed before publishing; replayed in another cut
    assert (await replay.apply(batch(events[790:800], 790))).alerts == crossing.alerts
    assert (await replay.apply(batch(events[800:999], 800))).alerts == []
    [full] = (await replay.apply(batch(events[999:], 999))).alerts
    assert full.threshold_pct == 100


async def test_messages_re_sent_and_updated_in_one_flush_survive_a_second_crash():
    store, events = MemoryStore(), [usage("acme", n) for n in range(30)]
    first = await UsageSink(store).apply(batch(events[:20]))  # killed before publishing
    second = await UsageSink(store).apply(batch(events))  # re-sends first's message, adds one; killed again
    third = await UsageSink(store).apply(batch(events))  # only replays: everything unsent goes out
    assert {m.event_id for m in third.usage} == {m.event_id for m in first.usage + second.usage}
    assert sum(m.delta.calls for m in {m.event_id: m for m in third.usage}.values()) == 30


async def test_id_lists_below_a_full_window_are_pruned():
    store, events = MemoryStore(), [usage("acme", n) for n in range(24)]
    sink = UsageSink(store, dedup_window=8)
    for lo in range(0, 24, 6):
        await sink.apply(batch(events[lo:lo + 6], lo))
    assert len(store.id_lists) == 4
    assert await sink.prune_seen() == 2  # the window holds 16-23: the lists ending before 16 go
    again = await UsageSink(store, dedup_window=8).apply(batch(events[16:], 24))
    assert again.duplicates == 8 and again.counted == 0
