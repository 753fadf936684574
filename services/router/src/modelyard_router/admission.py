"""Exact daily API-call quotas per tenant, counted per partition of the submitted-queries topic.

Queries are keyed by tenant, so exactly one router instance (the owner of the tenant's partition) counts
a tenant at a time, in offset order; no distributed lock is needed. The counts live in MongoDB, one
document per partition and UTC day holding every tenant of that partition, written *before* the batch's
decisions are published and its offsets committed. One document per partition (not per tenant) keeps
the write per batch to one per partition the batch touches, whatever the number of tenants: on
FerretDB every update costs milliseconds, so a write per tenant per batch is what once bounded the
router's latency.

A batch is redelivered when the router dies between that write and the commit. So that a redelivered
record gets the decision it got the first time (and is not counted twice), the document remembers the
last offset it decided and the runs of offsets it refused, per tenant, with their code and reason. A
record at or below the decided offset is a replay: admitted unless it lies in a refused run of its
tenant. Runs start only when a tenant's status or limit changes, so a day has a handful of them;
keeping runs rather than "first refused offset" lets admissions resume after a tier upgrade without
changing the verdict of an earlier, redelivered refusal.

Every write is fenced by the version read (``seq``): a router that lost the partition in a rebalance
while it was still writing (a zombie) cannot overwrite the new owner's counts; its write fails with
``AdmissionConflict`` and its batch is redelivered (to the new owner, which replays it). The owner keeps
its documents in memory between batches; a conflict or any failed write drops them, and the next batch
reads them again.

After the partition count of the topic grows, a tenant's queries move to another partition. The first
time a tenant appears in a partition's document on a day, its count starts from the highest count any
other partition recorded for it that day, so the quota stays exact except for queries still in flight
on the old partition at the moment of the move.
"""

from __future__ import annotations

import asyncio
import logging
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

    key: str
    topic: str
    partition: int
    day: str
    #: Last decided offset on this partition for this day (-1: none yet).
    position: int = -1
    tenants: dict[str, TenantCount] = field(default_factory=dict)
    refused: list[RefusedRun] = field(default_factory=list)
    #: Version read from the store; 0 when the document is not stored yet.
    seq: int = 0
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

    # -- storage form ------------------------------------------------------------------------------

    def as_doc(self) -> dict:
        # Tenant ids are arbitrary strings, so they are values, never field names.
        return {
            "topic": self.topic,
            "partition": self.partition,
            "day": self.day,
            "position": self.position,
            "tenants": [{"t": t, "n": c.count, "last": c.last} for t, c in self.tenants.items()],
            "refused": [r.as_doc() for r in self.refused],
        }

    @classmethod
    def from_doc(cls, doc: dict) -> PartitionDay:
        return cls(
            key=doc["_id"],
            topic=doc["topic"],
            partition=doc["partition"],
            day=doc["day"],
            position=doc["position"],
            tenants={e["t"]: TenantCount(e["n"], e["last"]) for e in doc.get("tenants", [])},
            refused=[RefusedRun.from_doc(r) for r in doc.get("refused", [])],
            seq=doc.get("seq", 0),
        )


class AdmissionConflict(TransientError):
    """A document changed in the store since it was read: another router owns the partition now."""


class AdmissionStore:
    """The partition-day documents of one submitted-queries topic, cached between batches."""

    def __init__(self, collection: AsyncCollection, topic: str, *, cache_days: int = 2) -> None:
        self.collection = collection
        self.topic = topic
        self.cache_days = cache_days
        self._cache: dict[str, PartitionDay] = {}

    def key(self, partition: int, day: str) -> str:
        return f"{self.topic}|{partition}|{day}"

    async def load(self, wanted: Mapping[tuple[int, str], Iterable[str]]) -> dict[tuple[int, str], PartitionDay]:
        """The documents of ``wanted`` (partition, day) → tenant ids, each tenant present in its document
        (carried over from another partition of the day when it is new to this one)."""
        docs: dict[tuple[int, str], PartitionDay] = {}
        for (partition, day), tenant_ids in wanted.items():
            doc = self._cache.get(self.key(partition, day))
            if doc is None:
                doc = await self._read(partition, day)
            docs[partition, day] = doc
            newcomers = {t for t in tenant_ids if t not in doc.tenants}
            if newcomers:
                carried = await self._elsewhere(doc, newcomers)
                for t in newcomers:
                    doc.tenants[t] = TenantCount(carried.get(t, 0))
        return docs

    async def _read(self, partition: int, day: str) -> PartitionDay:
        key = self.key(partition, day)
        with _READ_SECONDS.time():
            found = await self.collection.find_one({"_id": key})
        doc = PartitionDay.from_doc(found) if found else PartitionDay(key, self.topic, partition, day)
        self._cache[key] = doc
        self._trim_cache(day)
        return doc

    async def _elsewhere(self, doc: PartitionDay, tenant_ids: set[str]) -> dict[str, int]:
        """Highest count of each tenant in the day's documents of other partitions."""
        counts: dict[str, int] = {}
        async for other in self.collection.find({"topic": self.topic, "day": doc.day, "_id": {"$ne": doc.key}}):
            for entry in other.get("tenants", []):
                if (t := entry["t"]) in tenant_ids:
                    counts[t] = max(counts.get(t, 0), entry["n"])
        return counts

    def _trim_cache(self, day: str) -> None:
        oldest = (date.fromisoformat(day) - timedelta(days=self.cache_days - 1)).isoformat()
        for key in [k for k, d in self._cache.items() if d.day < oldest]:
            del self._cache[key]

    def forget(self, docs: Iterable[PartitionDay]) -> None:
        """Drop documents from the cache (their in-memory state may be ahead of the store)."""
        for doc in docs:
            self._cache.pop(doc.key, None)

    async def save(self, docs: Iterable[PartitionDay]) -> None:
        """Write the changed documents; raise ``AdmissionConflict`` if another writer got there first.

        Any failure drops the batch's documents from the cache. A conflict leaves the documents written
        before it in place; that is safe, because the batch is redelivered and every record a written
        document covers replays its verdict.
        """
        docs = list(docs)
        if not any(d.dirty for d in docs):
            return
        try:
            # One write per document, all at once: each is fenced on its own version.
            with _WRITE_SECONDS.time():
                results = await asyncio.gather(*(self._write(d) for d in docs if d.dirty), return_exceptions=True)
            for failure in (r for r in results if isinstance(r, BaseException)):
                raise failure
        except BaseException:
            self.forget(docs)
            raise

    async def _write(self, doc: PartitionDay) -> None:
        if doc.seq == 0:
            try:
                await self.collection.insert_one({"_id": doc.key, "seq": 1, **doc.as_doc()})
            except DuplicateKeyError as exc:
                raise AdmissionConflict(f"admission document {doc.key} was created concurrently") from exc
        else:
            result = await self.collection.replace_one({"_id": doc.key, "seq": doc.seq},
                                                       {"seq": doc.seq + 1, **doc.as_doc()})
            if result.matched_count != 1:
                raise AdmissionConflict(f"admission document {doc.key} changed since it was read")
        doc.seq += 1
        doc.dirty = False

    async def holding(self, tenant_id: str, day: str) -> list[PartitionDay]:
        """The stored documents of ``day`` that count ``tenant_id`` (one, unless partitions were added)."""
        found = []
        async for raw in self.collection.find({"topic": self.topic, "day": day}):
            doc = PartitionDay.from_doc(raw)
            if tenant_id in doc.tenants:
                found.append(doc)
        return found

    async def used_today(self, tenant_id: str, day: str) -> int:
        return max((d.count(tenant_id) for d in await self.holding(tenant_id, day)), default=0)

    async def prune(self, *, keep_days: int, today: date | None = None) -> int:
        """Delete documents of days before the last ``keep_days``: nothing replays that far back, and
        a small collection keeps FerretDB's per-update cost down."""
        today = today or datetime.now(UTC).date()
        oldest = (today - timedelta(days=keep_days - 1)).isoformat()
        result = await self.collection.delete_many({"day": {"$lt": oldest}})
        if result.deleted_count:
            log.info("pruned %d admission documents older than %s", result.deleted_count, oldest)
        return result.deleted_count
