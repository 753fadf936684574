"""Exact daily API-call quotas per tenant, counted per partition of the submitted-queries topic.

Queries are keyed by tenant, so exactly one router instance (the owner of the tenant's partition) counts
a tenant at a time, in offset order; no distributed lock is needed. Each router process keeps the
counts of the partitions it owns in *one* MongoDB document per UTC day (its "owner document"), written
*before* a batch's decisions are published and its offsets committed: one write per batch, whatever the
number of tenants and partitions in it. On FerretDB every write costs milliseconds of CPU, so a write
per tenant, or per partition, per batch is what once bounded the router's latency.

A batch is redelivered when the router dies between that write and the commit. So that a redelivered
record gets the decision it got the first time (and is not counted twice), each partition's state
remembers the last offset it decided and the runs of offsets it refused, per tenant, with their code
and reason. A record at or below the decided offset is a replay: admitted unless it lies in a refused
run of its tenant. Runs start only when a tenant's status or limit changes, so a day has a handful of
them; keeping runs rather than "first refused offset" lets admissions resume after a tier upgrade
without changing the verdict of an earlier, redelivered refusal.

Ownership moves between documents with the partition. A router that gets a partition it has no state
for *takes it over*: it finds the partition's newest state (highest ``epoch``) in the day's documents,
fences that document (a version-checked write that marks the partition as moved away), and continues
the state in its own document under the next epoch. Every write of a document is checked against the
version read (``seq``), so the former owner, if it is still running (a zombie after a rebalance), fails
its next write with ``AdmissionConflict`` and publishes nothing; its batch is redelivered to the new
owner, which replays it. A router keeps its document in memory between batches; a conflict or any
failed write drops it, and the next batch reads it again.

After the partition count of the topic grows, a tenant's queries move to another partition. The first
time a tenant appears in a partition's state on a day, its count starts from the highest count any
other partition recorded for it that day, so the quota stays exact except for queries still in flight
on the old partition at the moment of the move.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from modelyard_core import metrics
from modelyard_core.bus import TransientError
from modelyard_events import RejectCode

log = logging.getLogger(__name__)

#: Refused runs kept per document; the oldest are long committed when a day has this many status changes.
MAX_RUNS = 1024

_READ_SECONDS = metrics.STORE_SECONDS.labels("router", "admission_read")
_WRITE_SECONDS = metrics.STORE_SECONDS.labels("router", "admission_write")


def utc_day(when: datetime) -> str:
    """The UTC day a query counts against (a naive time is taken as UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.date().isoformat()


@dataclass(frozen=True, slots=True)
class Verdict:
    """An admission decision: admitted when ``code`` is None."""

    code: RejectCode | None = None
    reason: str = ""

    @property
    def admitted(self) -> bool:
        return self.code is None


ADMITTED = Verdict()

#: Builds the refusal of a tenant over its limit from (admissions so far today, limit).
QuotaRefusal = Callable[[int, int], Verdict]


@dataclass(slots=True)
class RefusedRun:
    """Consecutive records of one tenant on the partition, all refused for the same code and reason."""

    tenant_id: str
    first: int
    last: int
    code: RejectCode
    reason: str

    def as_doc(self) -> dict:
        return {"t": self.tenant_id, "first": self.first, "last": self.last, "code": self.code.value,
                "reason": self.reason}

    @classmethod
    def from_doc(cls, doc: dict) -> RefusedRun:
        return cls(doc["t"], doc["first"], doc["last"], RejectCode(doc["code"]), doc["reason"])


@dataclass(slots=True)
class TenantCount:
    #: Admissions today (including those carried over from another partition).
    count: int = 0
    #: The tenant's last decided offset on this partition (-1: none yet).
    last: int = -1


@dataclass(slots=True)
class PartitionDay:
    """Admissions of one partition of the submitted-queries topic on one UTC day."""

    partition: int
    day: str
    #: Last decided offset on this partition for this day (-1: none yet).
    position: int = -1
    tenants: dict[str, TenantCount] = field(default_factory=dict)
    refused: list[RefusedRun] = field(default_factory=list)
    #: Incremented each time the partition's state moves to another router's document.
    epoch: int = 1
    dirty: bool = False

    def count(self, tenant_id: str) -> int:
        entry = self.tenants.get(tenant_id)
        return entry.count if entry is not None else 0

    def recorded(self, tenant_id: str, offset: int) -> Verdict | None:
        """The verdict given to a record decided before, None for a record not seen yet."""
        if offset > self.position:
            return None
        for run in reversed(self.refused):
            if run.tenant_id == tenant_id and run.first <= offset <= run.last:
                return Verdict(run.code, run.reason)
        return ADMITTED

    def admit(self, tenant_id: str, offset: int, limit: int, *, refusal: Verdict | None = None,
              quota_refusal: QuotaRefusal | None = None) -> Verdict:
        """Decide one record, in offset order.

        A redelivered record gets its recorded verdict. A new one is refused with ``refusal`` when
        given (e.g. a suspended tenant), admitted while the tenant's count is below ``limit``, and
        refused with ``quota_refusal(count, limit)`` from there on. A limit that grows (tier upgrade)
        resumes admissions; one that shrinks below the count refuses the rest of the day.
        """
        replay = self.recorded(tenant_id, offset)
        if replay is not None:
            return replay
        entry = self.tenants.setdefault(tenant_id, TenantCount())
        if refusal is not None:
            verdict = refusal
        elif entry.count < limit:
            entry.count += 1
            verdict = ADMITTED
        else:
            verdict = (quota_refusal or self.over_limit)(entry.count, limit)
        if not verdict.admitted:
            self._record_refusal(tenant_id, entry.last, offset, verdict)
        entry.last = offset
        self.position = offset
        self.dirty = True
        return verdict

    def over_limit(self, count: int, limit: int) -> Verdict:
        return Verdict(RejectCode.QUOTA, f"daily API call limit of {limit:,} reached on {self.day}")

    def _record_refusal(self, tenant_id: str, previous: int, offset: int, verdict: Verdict) -> None:
        for run in reversed(self.refused):
            if run.tenant_id != tenant_id:
                continue
            # Extend the tenant's latest run when its previous record was in it (other tenants'
            # records in between do not split a run).
            if run.last == previous and run.code == verdict.code and run.reason == verdict.reason:
                run.last = offset
                return
            break
        self.refused.append(RefusedRun(tenant_id, offset, offset, verdict.code, verdict.reason))
        del self.refused[:-MAX_RUNS]

    def moved(self) -> PartitionDay:
        """A copy of this state under the next epoch, for the router taking the partition over."""
        return PartitionDay(self.partition, self.day, self.position,
                            {t: TenantCount(c.count, c.last) for t, c in self.tenants.items()},
                            [RefusedRun(r.tenant_id, r.first, r.last, r.code, r.reason) for r in self.refused],
                            epoch=self.epoch + 1, dirty=True)

    # -- storage form ------------------------------------------------------------------------------

    def as_doc(self) -> dict:
        # Tenant ids are arbitrary strings, so they are values, never field names.
        return {
            "p": self.partition,
            "epoch": self.epoch,
            "position": self.position,
            "tenants": [{"t": t, "n": c.count, "last": c.last} for t, c in self.tenants.items()],
            "refused": [r.as_doc() for r in self.refused],
        }

    @classmethod
    def from_doc(cls, doc: dict, day: str) -> PartitionDay:
        return cls(
            partition=doc["p"],
            day=day,
            position=doc["position"],
            tenants={e["t"]: TenantCount(e["n"], e["last"]) for e in doc.get("tenants", [])},
            refused=[RefusedRun.from_doc(r) for r in doc.get("refused", [])],
            epoch=doc.get("epoch", 1),
        )


@dataclass(slots=True)
class OwnerDay:
    """One router process's document for one day: the states of the partitions it owns."""

    key: str
    day: str
    parts: dict[int, PartitionDay] = field(default_factory=dict)
    #: Partitions taken over by another router (partition → the taker's document).
    fenced: dict[int, str] = field(default_factory=dict)
    #: Version read from the store; 0 when the document is not stored yet.
    seq: int = 0

    def as_doc(self, topic: str) -> dict:
        return {"topic": topic, "day": self.day, "partitions": [p.as_doc() for p in self.parts.values()],
                "fenced": [{"p": p, "to": to} for p, to in sorted(self.fenced.items())]}

    @classmethod
    def from_doc(cls, doc: dict) -> OwnerDay:
        day = doc["day"]
        parts = {p["p"]: PartitionDay.from_doc(p, day) for p in doc.get("partitions", [])}
        return cls(doc["_id"], day, parts, {f["p"]: f["to"] for f in doc.get("fenced", [])}, doc.get("seq", 0))


def newest_states(docs: Iterable[OwnerDay]) -> dict[int, tuple[PartitionDay, OwnerDay]]:
    """Each partition's newest state (highest epoch; the earlier document on a tie) and the document holding it."""
    newest: dict[int, tuple[PartitionDay, OwnerDay]] = {}
    for doc in docs:
        for partition, state in doc.parts.items():
            if partition not in newest or state.epoch > newest[partition][0].epoch:
                newest[partition] = (state, doc)
    return newest


class AdmissionConflict(TransientError):
    """A document changed in the store since it was read: another router took a partition over."""


class AdmissionStore:
    """The admission states of one submitted-queries topic, as one router process owns them."""

    def __init__(self, collection: AsyncCollection, topic: str, *, owner: str | None = None,
                 cache_days: int = 2) -> None:
        self.collection = collection
        self.topic = topic
        #: Unique per process: a restarted router starts a new document and takes its partitions over.
        self.owner = owner or uuid.uuid4().hex
        self.cache_days = cache_days
        self._days: dict[str, OwnerDay] = {}

    def key(self, day: str) -> str:
        return f"{self.topic}|{day}|{self.owner}"

    async def load(self, wanted: Mapping[tuple[int, str], Iterable[str]]) -> dict[tuple[int, str], PartitionDay]:
        """The states of ``wanted`` (partition, day) → tenant ids, each tenant present in its state (carried
        over from another partition of the day when it is new to this one)."""
        states: dict[tuple[int, str], PartitionDay] = {}
        by_day: dict[str, dict[int, set[str]]] = {}
        for (partition, day), tenant_ids in wanted.items():
            by_day.setdefault(day, {})[partition] = set(tenant_ids)
        for day, partitions in by_day.items():
            mine = self._days.get(day) or await self._read(day)
            stored: list[OwnerDay] | None = None
            missing = [p for p in partitions if p not in mine.parts]
            if missing:
                stored = await self._stored(day)
                try:
                    await self._take_over(mine, missing, stored)
                except BaseException:
                    self._days.pop(day, None)
                    raise
            for partition, tenant_ids in partitions.items():
                state = states[partition, day] = mine.parts[partition]
                newcomers = {t for t in tenant_ids if t not in state.tenants}
                if newcomers:
                    if stored is None:
                        stored = await self._stored(day)
                    carried = self._elsewhere(stored, mine, partition, newcomers)
                    for t in newcomers:
                        state.tenants[t] = TenantCount(carried.get(t, 0))
        if by_day:
            # Keep the documents of the last few days (late records of yesterday arrive after midnight).
            oldest = (date.fromisoformat(max(by_day)) - timedelta(days=self.cache_days - 1)).isoformat()
            for old in [d for d in self._days if d < oldest and d not in by_day]:
                del self._days[old]
        return states

    async def _read(self, day: str) -> OwnerDay:
        key = self.key(day)
        with _READ_SECONDS.time():
            found = await self.collection.find_one({"_id": key})
        mine = OwnerDay.from_doc(found) if found else OwnerDay(key, day)
        # Partitions another router took over are no longer ours (a later batch may take them back).
        for partition in mine.fenced:
            mine.parts.pop(partition, None)
        self._days[day] = mine
        return mine

    async def _stored(self, day: str) -> list[OwnerDay]:
        """Every stored document of the day, this process's own included (as stored)."""
        with _READ_SECONDS.time():
            return [OwnerDay.from_doc(doc) async for doc in self.collection.find({"topic": self.topic, "day": day})]

    async def _take_over(self, mine: OwnerDay, partitions: list[int], stored: list[OwnerDay]) -> None:
        """Continue each partition's newest state (or a new one) in this process's document.

        First the fences: the document that holds the newest state is marked as having lost the
        partition to us, and if another router had already taken it from there (and may be about to
        write it), that router's document is fenced too, created empty if need be. Each fence is a
        version-checked write, so the other router's next write fails. The states themselves are
        written with this process's document, after the batch is decided; if it dies before that, the
        fenced document still holds the newest state for the next taker.
        """
        holders: dict[str, OwnerDay] = {}
        takers: dict[str, dict[int, int]] = {}  # document → {partition: epoch it must not hold beyond}
        newest_of = newest_states(stored)
        for partition in partitions:
            newest = newest_of.get(partition)
            if newest is None:
                mine.parts[partition] = PartitionDay(partition, mine.day, dirty=True)
                continue
            state, holder = newest
            taker = holder.fenced.get(partition)
            if taker is None and holder.key != mine.key:
                holder.fenced[partition] = mine.key
                holders[holder.key] = holder
            elif taker is not None and taker != mine.key:
                takers.setdefault(taker, {})[partition] = state.epoch
            mine.parts[partition] = state.moved()
            mine.fenced.pop(partition, None)
        for holder in holders.values():
            with _WRITE_SECONDS.time():
                result = await self.collection.update_one(
                    {"_id": holder.key, "seq": holder.seq},
                    {"$set": {"seq": holder.seq + 1, **holder.as_doc(self.topic)}})
            if result.matched_count != 1:
                raise AdmissionConflict(f"admission document {holder.key} changed while its partitions were taken over")
            log.info("took partitions %s of %s over from %s", sorted(p for p, to in holder.fenced.items()
                                                                    if to == mine.key), mine.day, holder.key)
        for key, fenced in takers.items():
            await self._fence_taker(key, mine, fenced)

    async def _fence_taker(self, key: str, mine: OwnerDay, partitions: dict[int, int]) -> None:
        """Fence a router that took ``partitions`` over but has not written them (it may still)."""
        fences = {p: mine.key for p in partitions}
        with _WRITE_SECONDS.time():
            try:
                await self.collection.insert_one({"_id": key, "seq": 1, **OwnerDay(key, mine.day, fenced=fences).as_doc(self.topic)})
                return
            except DuplicateKeyError:
                pass
            found = await self.collection.find_one({"_id": key})
            doc = OwnerDay.from_doc(found)
            if any(p in doc.parts and doc.parts[p].epoch > epoch for p, epoch in partitions.items()):
                raise AdmissionConflict(f"admission document {key} took a partition over meanwhile")
            doc.fenced.update(fences)
            result = await self.collection.update_one({"_id": key, "seq": doc.seq},
                                                      {"$set": {"seq": doc.seq + 1, **doc.as_doc(self.topic)}})
        if result.matched_count != 1:
            raise AdmissionConflict(f"admission document {key} changed while it was fenced")

    @staticmethod
    def _elsewhere(stored: list[OwnerDay], mine: OwnerDay, partition: int, tenant_ids: set[str]) -> dict[str, int]:
        """Highest count of each tenant in the newest states of the day's other partitions."""
        counts: dict[str, int] = {}
        for p, (state, _) in newest_states([mine, *stored]).items():
            if p == partition:
                continue
            for t in tenant_ids & state.tenants.keys():
                counts[t] = max(counts.get(t, 0), state.tenants[t].count)
        return counts

    def forget(self, states: Iterable[PartitionDay]) -> None:
        """Drop the documents of these states from the cache (their in-memory state may be ahead of the store)."""
        for day in {s.day for s in states}:
            self._days.pop(day, None)

    async def save(self, states: Iterable[PartitionDay]) -> None:
        """Write this process's documents that hold changed states (one write per day); raise
        ``AdmissionConflict`` if another router fenced one of them since it was read.

        Any failure drops the documents from the cache: the next batch reads them again.
        """
        days = {s.day for s in states if s.dirty}
        if not days:
            return
        try:
            with _WRITE_SECONDS.time():
                for day in sorted(days):
                    await self._write(self._days[day])
        except BaseException:
            for day in days:
                self._days.pop(day, None)
            raise

    async def _write(self, mine: OwnerDay) -> None:
        body = mine.as_doc(self.topic)
        if mine.seq == 0:
            try:
                await self.collection.insert_one({"_id": mine.key, "seq": 1, **body})
            except DuplicateKeyError as exc:
                raise AdmissionConflict(f"admission document {mine.key} was created by another process") from exc
        else:
            result = await self.collection.replace_one({"_id": mine.key, "seq": mine.seq}, {"seq": mine.seq + 1, **body})
            if result.matched_count != 1:
                raise AdmissionConflict(f"admission document {mine.key} changed since it was read "
                                        "(another router took one of its partitions over)")
        mine.seq += 1
        for state in mine.parts.values():
            state.dirty = False

    async def holding(self, tenant_id: str, day: str) -> list[PartitionDay]:
        """The newest stored states of ``day`` that count ``tenant_id`` (one, unless partitions were added)."""
        stored = [OwnerDay.from_doc(raw) async for raw in self.collection.find({"topic": self.topic, "day": day})]
        return [state for state, _ in newest_states(stored).values() if tenant_id in state.tenants]

    async def used_today(self, tenant_id: str, day: str) -> int:
        return max((s.count(tenant_id) for s in await self.holding(tenant_id, day)), default=0)

    async def prune(self, *, keep_days: int, today: date | None = None) -> int:
        """Delete documents of days before the last ``keep_days``: nothing replays that far back, and
        a small collection keeps FerretDB's per-update cost down."""
        today = today or datetime.now(UTC).date()
        oldest = (today - timedelta(days=keep_days - 1)).isoformat()
        result = await self.collection.delete_many({"day": {"$lt": oldest}})
        if result.deleted_count:
            log.info("pruned %d admission documents older than %s", result.deleted_count, oldest)
        return result.deleted_count
