"""Exact daily API-call quotas per tenant, counted per partition of the submitted-queries topic.

Queries are keyed by tenant, so exactly one router instance (the owner of the tenant's partition) counts
a tenant at a time, in offset order; no distributed lock is needed. Each router process keeps the
counts of the partitions it owns as *one log* per UTC day (its "owner document"): a batch appends one
small entry with what the batch changed (the tenants it counted, each partition's position), written
*before* the batch's decisions are published and its offsets committed. A write therefore costs the
same with ten tenants or ten thousand; every ``SNAPSHOT_EVERY`` entries the log is folded into one
snapshot entry and the entries before it are deleted. Entries are inserts keyed by (document, sequence
number), so two writers of the same document cannot both append entry n: the second gets a duplicate
key, which is how every write is version-checked (on FerretDB/SQLite an insert is also the one write
that does not scan its collection).

A batch is redelivered when the router dies between that write and the commit. So that a redelivered
record gets the decision it got the first time (and is not counted twice), each partition's state
remembers the last offset it decided and the runs of offsets it refused, per tenant, with their code
and reason. A record at or below the decided offset is a replay: admitted unless it lies in a refused
run of its tenant. Runs start only when a tenant's status or limit changes, so a day has a handful of
them; keeping runs rather than "first refused offset" lets admissions resume after a tier upgrade
without changing the verdict of an earlier, redelivered refusal.

Ownership moves between documents with the partition. A router that gets a partition it has no state
for *takes it over*: it finds the partition's newest state (highest ``epoch``) in the day's documents,
fences that document (an entry appended to it that marks the partition as moved away), and continues
the state in its own document under the next epoch. Appending takes the next sequence number of the
document as read, so the former owner, if it is still running (a zombie after a rebalance), fails its
next write with ``AdmissionConflict`` and publishes nothing; its batch is redelivered to the new
owner, which replays it. A router keeps its document in memory between batches; a conflict or any
failed write drops it, and the next batch reads it again.

After the partition count of the topic grows, a tenant's queries move to another partition. The first
time a tenant appears in a partition's state on a day, its count starts from the highest count any
other partition recorded for it that day, so the quota stays exact except for queries still in flight
on the old partition at the moment of the move.

The state and its decisions are plain code in ``admission_state``; storage is the
``ports.AdmissionLog`` port (``mongo.MongoAdmissionLog`` in the service). ``AdmissionStore`` below
runs them: read, take over, carry counts, append.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection

from modelyard_core import metrics
from modelyard_core.bus import TransientError

from .admission_state import (  # noqa: F401 - re-exported: where the router and its tests import them from
    ADMITTED, MAX_RUNS, SNAPSHOT_EVERY, OwnerDay, PartitionDay, QuotaRefusal, RefusedRun, TenantCount, Verdict,
    carried_counts, entry_id, fences_doc, moved_on, newest_states, plan_take_over, utc_day,
)
from .mongo import MongoAdmissionLog
from .ports import AdmissionLog

log = logging.getLogger(__name__)

_READ_SECONDS = metrics.STORE_SECONDS.labels("router", "admission_read")
_WRITE_SECONDS = metrics.STORE_SECONDS.labels("router", "admission_write")


class AdmissionConflict(TransientError):
    """A document changed in the store since it was read: another router took a partition over."""


class AdmissionStore:
    """The admission states of one submitted-queries topic, as one router process owns them."""

    def __init__(self, collection: AdmissionLog | AsyncCollection | None, topic: str, *, owner: str | None = None,
                 cache_days: int = 2, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        """``collection`` is the storage port; a MongoDB collection is wrapped in ``MongoAdmissionLog``."""
        self.log: AdmissionLog = (MongoAdmissionLog(collection) if collection is None or isinstance(collection, AsyncCollection)
                                  else collection)
        self.topic = topic
        #: Unique per process: a restarted router starts a new document and takes its partitions over.
        self.owner = owner or uuid.uuid4().hex
        self.cache_days = cache_days
        self.snapshot_every = snapshot_every
        self._days: dict[str, OwnerDay] = {}
        #: document -> the newest snapshot's seq whose older entries are still to be deleted (``_tidy``)
        self._tidy_upto: dict[str, int] = {}
        self._tidying: asyncio.Task | None = None

    def key(self, day: str) -> str:
        return f"{self.topic}|{day}|{self.owner}"

    async def ensure_indexes(self) -> None:
        await self.log.ensure_indexes()

    async def load(self, wanted: Mapping[tuple[int, str], Iterable[str]]) -> dict[tuple[int, str], PartitionDay]:
        """The states of ``wanted`` (partition, day) → tenant ids, each tenant present in its state (carried
        over from another partition of the day when it is new to this one)."""
        states: dict[tuple[int, str], PartitionDay] = {}
        by_day: dict[str, dict[int, set[str]]] = {}
        for (partition, day), tenant_ids in wanted.items():
            by_day.setdefault(day, {})[partition] = set(tenant_ids)
        for day, partitions in by_day.items():
            # 1. This process's document of the day (cached between batches).
            mine = self._days.get(day) or await self._read(day)
            # 2. Partitions it does not own (yet, or any more): take them over, fencing their holders.
            stored: list[OwnerDay] | None = None
            missing = [p for p in partitions if not mine.owns(p)]
            if missing:
                stored = await self._stored(day)
                try:
                    await self._take_over(mine, missing, stored)
                except BaseException:
                    self._days.pop(day, None)
                    raise
            # 3. Tenants new to a partition today start from their count on the day's other partitions.
            for partition, tenant_ids in partitions.items():
                state = states[partition, day] = mine.parts[partition]
                newcomers = {t for t in tenant_ids if t not in state.tenants}
                if newcomers:
                    if stored is None:
                        stored = await self._stored(day)
                    carried = carried_counts(stored, mine, partition, newcomers)
                    for t in newcomers:
                        state.add_tenant(t, carried.get(t, 0))
        if by_day:
            # Keep the documents of the last few days (late records of yesterday arrive after midnight).
            oldest = (date.fromisoformat(max(by_day)) - timedelta(days=self.cache_days - 1)).isoformat()
            for old in [d for d in self._days if d < oldest and d not in by_day]:
                del self._days[old]
        return states

    async def _read(self, day: str) -> OwnerDay:
        mine = self._days[day] = await self._read_doc(self.key(day), day)
        return mine

    async def _read_doc(self, key: str, day: str) -> OwnerDay:
        with _READ_SECONDS.time():
            return OwnerDay.fold(key, day, await self.log.entries(key))

    async def _stored(self, day: str) -> list[OwnerDay]:
        """Every stored document of the day, this process's own included (as stored)."""
        with _READ_SECONDS.time():
            logs: dict[str, list[dict]] = {}
            for entry in await self.log.day_entries(self.topic, day):
                logs.setdefault(entry["doc"], []).append(entry)
        return [OwnerDay.fold(key, day, entries) for key, entries in logs.items()]

    async def _take_over(self, mine: OwnerDay, partitions: list[int], stored: list[OwnerDay]) -> None:
        """Continue each partition's newest state in this process's document, after fencing (see
        ``plan_take_over``). Each fence is an entry appended to the other document's log, so the
        other router's next write fails. The states themselves are written with this process's
        document, after the batch is decided."""
        plan = plan_take_over(mine, partitions, stored)
        for holder, taken in plan.holders.values():
            await self._append(holder, {"fenced": fences_doc(dict.fromkeys(taken, mine.key))})
            log.info("took partitions %s of %s over from %s", taken, mine.day, holder.key)
        for key, fenced in plan.takers.items():
            await self._fence_taker(key, mine, fenced)

    async def _fence_taker(self, key: str, mine: OwnerDay, partitions: dict[int, int]) -> None:
        """Fence a router that took ``partitions`` over but has not written them (it may still)."""
        doc = await self._read_doc(key, mine.day)
        if moved_on(doc, partitions):
            raise AdmissionConflict(f"admission document {key} took a partition over meanwhile")
        await self._append(doc, {"fenced": fences_doc(dict.fromkeys(partitions, mine.key))})

    async def _append(self, doc: OwnerDay, body: dict) -> None:
        """Append an entry to ``doc``'s log: AdmissionConflict if someone appended since it was read."""
        seq = doc.seq + 1
        with _WRITE_SECONDS.time():
            if not await self.log.append(doc.entry(seq, self.topic, body)):
                raise AdmissionConflict(f"admission document {doc.key} changed since it was read "
                                        "(another router took one of its partitions over)")
        doc.seq = seq

    def forget(self, states: Iterable[PartitionDay]) -> None:
        """Drop the documents of these states from the cache (their in-memory state may be ahead of the store)."""
        for day in {s.day for s in states}:
            self._days.pop(day, None)

    async def save(self, states: Iterable[PartitionDay]) -> None:
        """Append what changed to this process's documents (one entry per day); raise
        ``AdmissionConflict`` if another router fenced one of them since it was read.

        Any failure drops the documents from the cache: the next batch reads them again.
        """
        days = {s.day for s in states if s.dirty}
        if not days:
            return
        try:
            for day in sorted(days):
                await self._write(self._days[day])
        except BaseException:
            for day in days:
                self._days.pop(day, None)
            raise

    async def _write(self, mine: OwnerDay) -> None:
        snapshot = mine.seq - mine.snapshot_seq >= self.snapshot_every
        await self._append(mine, mine.snapshot_body() if snapshot else mine.change_body())
        for state in mine.parts.values():
            state.written()
        if snapshot:
            mine.snapshot_seq = mine.seq
            self._tidy_later(mine.key, mine.seq)

    def _tidy_later(self, key: str, seq: int) -> None:
        """Delete a document's entries before its snapshot off the write path: readers skip them anyway, and
        awaiting the delete here held up every 256th batch (the router's latency tail, issue 22)."""
        self._tidy_upto[key] = seq
        if self._tidying is None or self._tidying.done():
            self._tidying = asyncio.create_task(self._tidy(), name="router-admission-tidy")

    async def _tidy(self) -> None:
        while self._tidy_upto:  # a snapshot taken during a delete is tidied in the same task
            key, seq = self._tidy_upto.popitem()
            try:
                await self.log.delete_before(key, seq)
            except Exception:  # noqa: BLE001 - housekeeping: readers skip what precedes a snapshot
                log.warning("deleting entries of %s before its snapshot %d failed", key, seq, exc_info=True)

    async def close(self) -> None:
        """Finish the deletes still running (shutdown)."""
        if self._tidying is not None:
            await self._tidying

    async def holding(self, tenant_id: str, day: str) -> list[PartitionDay]:
        """The newest stored states of ``day`` that count ``tenant_id`` (one, unless partitions were added)."""
        return [state for state, _ in newest_states(await self._stored(day)).values() if tenant_id in state.tenants]

    async def used_today(self, tenant_id: str, day: str) -> int:
        return max((s.count(tenant_id) for s in await self.holding(tenant_id, day)), default=0)

    async def prune(self, *, keep_days: int, today: date | None = None) -> int:
        """Delete the logs of days before the last ``keep_days``: nothing replays that far back, and a
        small collection keeps FerretDB's scans (every read but by ``_id``) short."""
        today = today or datetime.now(UTC).date()
        oldest = (today - timedelta(days=keep_days - 1)).isoformat()
        deleted = await self.log.delete_days_before(oldest)
        if deleted:
            log.info("pruned %d admission documents older than %s", deleted, oldest)
        return deleted
