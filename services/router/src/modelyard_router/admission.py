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

Size: the admission state, its log and its fencing are one protocol, kept in one module until it is
split into a pure core and its MongoDB adapter (issue 15).
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
#: Entries of an owner document's log between two snapshots: a reader folds at most this many, and
#: a snapshot (whose size grows with the tenants of the day) is written once per this many batches.
SNAPSHOT_EVERY = 256

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
    #: Changed since it was last written; what changed is in ``changed``/``refused_changed``, or
    #: everything when ``whole`` (a new state, or one moved from another document).
    dirty: bool = False
    changed: set[str] = field(default_factory=set)
    refused_changed: bool = False
    whole: bool = False

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
        self.changed.add(tenant_id)
        return verdict

    def add_tenant(self, tenant_id: str, count: int) -> None:
        """A tenant new to this partition today, starting from ``count`` (carried from another partition)."""
        self.tenants[tenant_id] = TenantCount(count)
        self.changed.add(tenant_id)

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
                self.refused_changed = True
                return
            break
        self.refused.append(RefusedRun(tenant_id, offset, offset, verdict.code, verdict.reason))
        del self.refused[:-MAX_RUNS]
        self.refused_changed = True

    def moved(self) -> PartitionDay:
        """A copy of this state under the next epoch, for the router taking the partition over."""
        return PartitionDay(self.partition, self.day, self.position,
                            {t: TenantCount(c.count, c.last) for t, c in self.tenants.items()},
                            [RefusedRun(r.tenant_id, r.first, r.last, r.code, r.reason) for r in self.refused],
                            epoch=self.epoch + 1, dirty=True, whole=True)

    # -- storage form ------------------------------------------------------------------------------

    def as_doc(self) -> dict:
        """The whole state."""
        return self._doc(self.tenants, refused=True) | {"whole": True}

    def change_doc(self) -> dict:
        """What changed since the state was last written (the whole state if it was never written here)."""
        if self.whole:
            return self.as_doc()
        return self._doc({t: self.tenants[t] for t in self.changed}, refused=self.refused_changed)

    def written(self) -> None:
        self.dirty = self.refused_changed = self.whole = False
        self.changed.clear()

    def _doc(self, tenants: Mapping[str, TenantCount], *, refused: bool) -> dict:
        # Tenant ids are arbitrary strings, so they are values, never field names.
        doc = {
            "p": self.partition,
            "epoch": self.epoch,
            "position": self.position,
            "tenants": [{"t": t, "n": c.count, "last": c.last} for t, c in tenants.items()],
        }
        if refused:
            doc["refused"] = [r.as_doc() for r in self.refused]
        return doc

    def apply(self, change: dict) -> None:
        """Fold a written change into this state."""
        self.epoch = change["epoch"]
        self.position = change["position"]
        for e in change.get("tenants", []):
            self.tenants[e["t"]] = TenantCount(e["n"], e["last"])
        if "refused" in change:
            self.refused = [RefusedRun.from_doc(r) for r in change["refused"]]

    @classmethod
    def from_doc(cls, doc: dict, day: str) -> PartitionDay:
        """A state from its whole stored form (``as_doc``)."""
        state = cls(doc["p"], day)
        state.apply(doc)
        return state


def fences_doc(fenced: Mapping[int, str]) -> list[dict]:
    """Stored form of fences: partition → the document that took it over."""
    return [{"p": p, "to": to} for p, to in sorted(fenced.items())]


def entry_id(key: str, seq: int) -> str:
    """``_id`` of entry ``seq`` of the log of owner document ``key``: unique, so an entry is written once."""
    return f"{key}|{seq:010d}"


@dataclass(slots=True)
class OwnerDay:
    """One router process's document for one day: the states of the partitions it owns, folded from its log."""

    key: str
    day: str
    #: Every partition state in the document, fenced ones included: until the taker writes, a fenced
    #: state may be the newest there is.
    parts: dict[int, PartitionDay] = field(default_factory=dict)
    #: Partitions taken over by another router (partition → the taker's document).
    fenced: dict[int, str] = field(default_factory=dict)
    #: Sequence number of the last entry read or written; 0 when the log is empty.
    seq: int = 0
    #: Sequence number of the newest snapshot entry (0: none yet).
    snapshot_seq: int = 0

    def owns(self, partition: int) -> bool:
        return partition in self.parts and partition not in self.fenced

    def take(self, state: PartitionDay) -> None:
        """Hold ``state`` (new, or continued from another document): this document owns its partition again."""
        self.parts[state.partition] = state
        self.fenced.pop(state.partition, None)

    def entry(self, seq: int, topic: str, body: dict) -> dict:
        return {"_id": entry_id(self.key, seq), "doc": self.key, "topic": topic, "day": self.day, "seq": seq, **body}

    def snapshot_body(self) -> dict:
        return {"snapshot": True, "partitions": [p.as_doc() for p in self.parts.values()],
                "fenced": fences_doc(self.fenced)}

    def change_body(self) -> dict:
        return {"partitions": [p.change_doc() for p in self.parts.values() if p.dirty]}

    def apply(self, entry: dict) -> None:
        """Fold one entry of the log (in sequence order) into the document."""
        if entry.get("snapshot"):
            self.parts, self.fenced, self.snapshot_seq = {}, {}, entry["seq"]
        for change in entry.get("partitions", []):
            partition = change["p"]
            if change.get("whole") or partition not in self.parts:
                # A state this router started or took (back) over: it owns the partition again.
                self.take(PartitionDay.from_doc(change, self.day))
            else:
                self.parts[partition].apply(change)
        for fence in entry.get("fenced", []):
            self.fenced[fence["p"]] = fence["to"]
        self.seq = entry["seq"]

    @classmethod
    def fold(cls, key: str, day: str, entries: Iterable[dict]) -> OwnerDay:
        """The document as its log says, from the newest snapshot on (older entries may not be deleted yet)."""
        doc = cls(key, day)
        ordered = sorted(entries, key=lambda e: e["seq"])
        start = max((i for i, e in enumerate(ordered) if e.get("snapshot")), default=0)
        for entry in ordered[start:]:
            doc.apply(entry)
        return doc


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
                 cache_days: int = 2, snapshot_every: int = SNAPSHOT_EVERY) -> None:
        self.collection = collection
        self.topic = topic
        #: Unique per process: a restarted router starts a new document and takes its partitions over.
        self.owner = owner or uuid.uuid4().hex
        self.cache_days = cache_days
        self.snapshot_every = snapshot_every
        self._days: dict[str, OwnerDay] = {}

    def key(self, day: str) -> str:
        return f"{self.topic}|{day}|{self.owner}"

    async def ensure_indexes(self) -> None:
        """Indexes of the two reads (one document's log; a day's logs). On MongoDB; FerretDB/SQLite scans anyway."""
        await self.collection.create_index([("doc", 1), ("seq", 1)])
        await self.collection.create_index([("topic", 1), ("day", 1)])

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
            missing = [p for p in partitions if not mine.owns(p)]
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
            return OwnerDay.fold(key, day, [e async for e in self.collection.find({"doc": key})])

    async def _stored(self, day: str) -> list[OwnerDay]:
        """Every stored document of the day, this process's own included (as stored)."""
        with _READ_SECONDS.time():
            logs: dict[str, list[dict]] = {}
            async for entry in self.collection.find({"topic": self.topic, "day": day}):
                logs.setdefault(entry["doc"], []).append(entry)
        return [OwnerDay.fold(key, day, entries) for key, entries in logs.items()]

    async def _take_over(self, mine: OwnerDay, partitions: list[int], stored: list[OwnerDay]) -> None:
        """Continue each partition's newest state (or a new one) in this process's document.

        First the fences: the document that holds the newest state is marked as having lost the
        partition to us, and if another router had already taken it from there (and may be about to
        write it), that router's document is fenced too, created if need be. Each fence is an entry
        appended to the other document's log, so the other router's next write fails. The states
        themselves are written with this process's document, after the batch is decided; if it dies
        before that, the fenced document still holds the newest state for the next taker.
        """
        holders: dict[str, tuple[OwnerDay, list[int]]] = {}
        takers: dict[str, dict[int, int]] = {}  # document → {partition: epoch it must not hold beyond}
        newest_of = newest_states(stored)
        for partition in partitions:
            newest = newest_of.get(partition)
            if newest is None:
                mine.take(PartitionDay(partition, mine.day, dirty=True, whole=True))
                continue
            state, holder = newest
            taker = holder.fenced.get(partition)
            if taker is None and holder.key != mine.key:
                holders.setdefault(holder.key, (holder, []))[1].append(partition)
            elif taker is not None and taker != mine.key:
                takers.setdefault(taker, {})[partition] = state.epoch
            mine.take(state.moved())
        for holder, taken in holders.values():
            await self._append(holder, {"fenced": fences_doc(dict.fromkeys(taken, mine.key))})
            log.info("took partitions %s of %s over from %s", taken, mine.day, holder.key)
        for key, fenced in takers.items():
            await self._fence_taker(key, mine, fenced)

    async def _fence_taker(self, key: str, mine: OwnerDay, partitions: dict[int, int]) -> None:
        """Fence a router that took ``partitions`` over but has not written them (it may still)."""
        doc = await self._read_doc(key, mine.day)
        if any(p in doc.parts and doc.parts[p].epoch > epoch for p, epoch in partitions.items()):
            raise AdmissionConflict(f"admission document {key} took a partition over meanwhile")
        await self._append(doc, {"fenced": fences_doc(dict.fromkeys(partitions, mine.key))})

    async def _append(self, doc: OwnerDay, body: dict) -> None:
        """Append an entry to ``doc``'s log: AdmissionConflict if someone appended since it was read."""
        seq = doc.seq + 1
        with _WRITE_SECONDS.time():
            try:
                await self.collection.insert_one(doc.entry(seq, self.topic, body))
            except DuplicateKeyError as exc:
                raise AdmissionConflict(f"admission document {doc.key} changed since it was read "
                                        "(another router took one of its partitions over)") from exc
        doc.seq = seq

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
            try:
                await self.collection.delete_many({"doc": mine.key, "seq": {"$lt": mine.seq}})
            except Exception:  # noqa: BLE001 - housekeeping: readers skip what precedes a snapshot
                log.warning("deleting entries of %s before its snapshot %d failed", mine.key, mine.seq, exc_info=True)

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
        result = await self.collection.delete_many({"day": {"$lt": oldest}})
        if result.deleted_count:
            log.info("pruned %d admission documents older than %s", result.deleted_count, oldest)
        return result.deleted_count
