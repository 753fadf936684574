"""Unit tests (no servers): admission across router processes, over an in-memory log.

``MemoryLog`` is an in-memory fake of ``ports.AdmissionLog`` with the adapter's one promise (an
entry is stored only if no entry has its ``_id``), so several ``AdmissionStore`` objects over one
log are several router processes sharing a database. The MongoDB adapter is proven against the real
server by ``test_router_system.py``.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from datetime import date

import pytest

from modelyard_router.admission import AdmissionConflict, AdmissionStore

TOPIC = "queries.submitted"
DAY = "2025-06-01"


class MemoryLog:
    def __init__(self) -> None:
        self.stored: dict[str, dict] = {}
        self.appends = 0
        self.fail_next_append = False
        #: Something to run just before one document's log is read (another router acting meanwhile).
        self.before_reading: dict[str, Callable[[], Awaitable[None]]] = {}

    async def ensure_indexes(self) -> None:
        pass

    async def entries(self, doc: str) -> list[dict]:
        if doc in self.before_reading:
            await self.before_reading.pop(doc)()
        return [copy.deepcopy(e) for e in self.stored.values() if e["doc"] == doc]

    async def day_entries(self, topic: str, day: str) -> list[dict]:
        return [copy.deepcopy(e) for e in self.stored.values() if (e["topic"], e["day"]) == (topic, day)]

    async def append(self, entry: dict) -> bool:
        if self.fail_next_append:
            self.fail_next_append = False
            raise ConnectionError("database unreachable")
        if entry["_id"] in self.stored:
            return False
        self.appends += 1
        self.stored[entry["_id"]] = copy.deepcopy(entry)
        return True

    async def delete_before(self, doc: str, seq: int) -> None:
        for _id in [i for i, e in self.stored.items() if e["doc"] == doc and e["seq"] < seq]:
            del self.stored[_id]

    async def delete_days_before(self, day: str) -> int:
        old = [i for i, e in self.stored.items() if e["day"] < day]
        for _id in old:
            del self.stored[_id]
        return len(old)


def router(log: MemoryLog, **options) -> AdmissionStore:
    """One router process."""
    return AdmissionStore(log, TOPIC, **options)


async def decide(store: AdmissionStore, partition: int, tenant: str, offsets, limit: int = 100, *, save: bool = True):
    state = (await store.load({(partition, DAY): {tenant}}))[partition, DAY]
    verdicts = [state.admit(tenant, o, limit).admitted for o in offsets]
    if save:
        await store.save([state])
    return state, verdicts


async def test_counts_survive_a_restart_and_a_redelivery_gets_the_same_verdicts():
    log = MemoryLog()
    _, first = await decide(router(log), 3, "acme", range(5), limit=3)
    assert first == [True, True, True, False, False]
    restarted = router(log)  # a new process takes the partition over from the old document
    state, again = await decide(restarted, 3, "acme", range(7), limit=3)
    assert again == [True, True, True, False, False, False, False] and state.count("acme") == 3
    assert await restarted.used_today("acme", DAY) == 3


async def test_a_zombie_that_lost_its_partition_cannot_write():
    log = MemoryLog()
    old, new = router(log), router(log)
    await decide(old, 1, "acme", [0])
    taken, _ = await decide(new, 1, "acme", [0, 1])  # takes over, fencing the old document
    assert taken.count("acme") == 2 and taken.epoch == 2
    stale, _ = await decide(old, 1, "acme", [1, 2], save=False)  # decided from its cached document
    with pytest.raises(AdmissionConflict):
        await old.save([stale])
    assert await new.used_today("acme", DAY) == 2
    # Reading again, the old router takes the partition back and continues the new owner's count.
    back, verdicts = await decide(old, 1, "acme", [1, 2])
    assert back.count("acme") == 3 and back.epoch == 3 and verdicts == [True, True]
    with pytest.raises(AdmissionConflict):
        await decide(new, 1, "acme", [3])


async def test_a_taker_that_never_wrote_is_fenced_by_the_next_taker():
    log = MemoryLog()
    a, b, c = router(log), router(log), router(log)
    await decide(a, 5, "acme", [0])
    state_b, _ = await decide(b, 5, "acme", [1], save=False)  # fences A, then stalls before writing
    state_c, _ = await decide(c, 5, "acme", [1])
    assert state_c.count("acme") == 2 and state_c.epoch == 2  # from A's state: B never wrote
    with pytest.raises(AdmissionConflict):
        await b.save([state_b])
    assert await c.used_today("acme", DAY) == 2


async def test_fencing_a_taker_that_wrote_meanwhile_is_a_conflict():
    log = MemoryLog()
    a, b, c = router(log), router(log), router(log)
    await decide(a, 2, "acme", [0])
    state_b, _ = await decide(b, 2, "acme", [1], save=False)  # B fenced A and has not written yet ...
    log.before_reading[b.key(DAY)] = lambda: b.save([state_b])  # ... and writes just as C checks on it
    with pytest.raises(AdmissionConflict):
        await c.load({(2, DAY): {"acme"}})  # fencing B now would lose what B decided
    assert await b.used_today("acme", DAY) == 2
    taken, _ = await decide(c, 2, "acme", [2])  # the retry continues B's state
    assert taken.count("acme") == 3 and taken.epoch == 3


async def test_a_tenant_new_to_a_partition_starts_from_its_count_elsewhere_that_day():
    log = MemoryLog()
    store = router(log)
    await decide(store, 0, "acme", range(4))
    moved, _ = await decide(store, 7, "acme", [0, 1])  # the topic got more partitions: acme moved
    assert moved.count("acme") == 6


async def test_only_the_changes_are_appended_and_snapshots_bound_the_log():
    log = MemoryLog()
    store = router(log, snapshot_every=3)
    tenants = [f"t{i}" for i in range(50)]
    state = (await store.load({(4, DAY): tenants}))[4, DAY]
    for offset, t in enumerate(tenants):
        state.admit(t, offset, 2)
    await store.save([state])
    for offset in range(50, 58):
        await decide(store, 4, "t0", [offset], limit=2)
    await store.close()  # the deletes run off the write path
    seqs = sorted(e["seq"] for e in log.stored.values())
    assert seqs == [8, 9]  # 9 appends, snapshots at 4 and 8: the entries before the last one are gone
    latest = log.stored[max(log.stored)]
    assert [t["t"] for t in latest["partitions"][0]["tenants"]] == ["t0"]  # one tenant, not fifty
    taken = (await router(log).load({(4, DAY): ["t0", "t1"]}))[4, DAY]  # another router, from snapshot + entry
    assert (taken.count("t0"), taken.count("t1"), taken.position) == (2, 1, 57)
    assert not taken.admit("t0", 57, 2).admitted  # a replayed refusal stays a refusal


async def test_a_failed_write_drops_the_cached_document_so_the_next_batch_reads_it_again():
    log = MemoryLog()
    store = router(log)
    await decide(store, 0, "acme", [0, 1])
    state, _ = await decide(store, 0, "acme", [2], save=False)
    log.fail_next_append = True
    with pytest.raises(ConnectionError):
        await store.save([state])
    again, verdicts = await decide(store, 0, "acme", [2, 3])
    assert verdicts == [True, True] and again.count("acme") == 4  # offset 2 was never stored: decided anew


async def test_old_days_are_pruned_and_leave_the_cache():
    log = MemoryLog()
    store = router(log, cache_days=2)
    for day in ("2025-06-01", "2025-06-02", "2025-06-03"):
        state = (await store.load({(0, day): {"acme"}}))[0, day]
        state.admit("acme", 0, 5)
        await store.save([state])
    assert sorted(store._days) == ["2025-06-02", "2025-06-03"]  # noqa: SLF001
    assert await store.prune(keep_days=2, today=date(2025, 6, 3)) == 1
    assert {e["day"] for e in log.stored.values()} == {"2025-06-02", "2025-06-03"}


async def test_a_slow_delete_after_a_snapshot_does_not_hold_up_the_next_writes():
    class SlowDeletes(MemoryLog):
        def __init__(self) -> None:
            super().__init__()
            self.release = asyncio.Event()

        async def delete_before(self, doc: str, seq: int) -> None:
            await self.release.wait()
            await super().delete_before(doc, seq)

    log = SlowDeletes()
    store = router(log, snapshot_every=3)
    async with asyncio.timeout(5):  # a delete awaited on the write path would wait here for ever
        for offset in range(9):  # snapshots at 4 and 8 while the first delete is still waiting
            await decide(store, 4, "t0", [offset], limit=100)
    assert log.appends == 9 and len(log.stored) == 9  # every write landed, nothing deleted yet
    log.release.set()
    await store.close()
    assert sorted(e["seq"] for e in log.stored.values()) == [8, 9]  # the newest snapshot's delete ran too
