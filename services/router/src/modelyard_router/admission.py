"""Exact daily API-call quotas per tenant.

Queries are keyed by tenant, so exactly one router instance (the owner of the tenant's partition) counts
a tenant at a time, in offset order; no distributed lock is needed. The count lives in MongoDB, one
document per tenant and day, written *before* the batch's decisions are published and its offsets
committed.

A batch is redelivered when the router dies between that write and the commit. So that a redelivered
record gets the decision it got the first time (and is not counted twice), a counter remembers, per
partition, the last offset it decided, and the runs of offsets it refused with their code and reason.
A record at or below the decided offset is a replay: admitted unless it lies in a refused run. Runs
start only when the tenant's status or limit changes, so a day has a handful of them; keeping runs
rather than "first refused offset" is what lets admissions resume after a tier upgrade without
changing the verdict of an earlier, redelivered refusal.

Every write is fenced by the version read (``seq``): a router that lost the partition in a rebalance
while it was still writing (a zombie) cannot overwrite the new owner's count; its write fails with
``AdmissionConflict`` and its batch is redelivered (to the new owner, which replays it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pymongo import InsertOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from modelyard_core.bus import TransientError
from modelyard_events import RejectCode

log = logging.getLogger(__name__)

#: Refused runs kept per counter; the oldest are long committed when a day has this many status changes.
MAX_RUNS = 64
DUPLICATE_KEY = 11000


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


@dataclass(slots=True)
class RefusedRun:
    """Consecutive records of one tenant on one partition, all refused for the same code and reason."""

    partition: int
    first: int
    last: int
    code: RejectCode
    reason: str

    def as_doc(self) -> dict:
        return {"p": self.partition, "first": self.first, "last": self.last, "code": self.code.value, "reason": self.reason}

    @classmethod
    def from_doc(cls, doc: dict) -> RefusedRun:
        return cls(doc["p"], doc["first"], doc["last"], RejectCode(doc["code"]), doc["reason"])


def over_limit(counter: Counter, limit: int) -> Verdict:
    return Verdict(RejectCode.QUOTA, f"daily API call limit of {limit:,} reached on {counter.day}")


@dataclass(slots=True)
class Counter:
    """One tenant's admissions on one (UTC) day."""

    key: str
    tenant_id: str
    day: str
    count: int = 0
    #: Last decided offset per partition.
    positions: dict[int, int] = field(default_factory=dict)
    refused: list[RefusedRun] = field(default_factory=list)
    #: Version read from the store; 0 when the counter is not stored yet.
    seq: int = 0
    dirty: bool = False

    def recorded(self, partition: int, offset: int) -> Verdict | None:
        """The verdict given to a record decided before, None for a record not seen yet."""
        if offset > self.positions.get(partition, -1):
            return None
        for run in reversed(self.refused):
            if run.partition == partition and run.first <= offset <= run.last:
                return Verdict(run.code, run.reason)
        return ADMITTED

    def admit(
        self,
        partition: int,
        offset: int,
        limit: int,
        *,
        refusal: Verdict | None = None,
        quota_refusal: Callable[[Counter, int], Verdict] = over_limit,
    ) -> Verdict:
        """Decide one record, in offset order.

        A redelivered record gets its recorded verdict. A new one is refused with ``refusal`` when
        given (e.g. a suspended tenant), admitted while the count is below ``limit``, and refused
        with ``quota_refusal(self, limit)`` from there on. A limit that grows (tier upgrade) resumes
        admissions; one that shrinks below the count refuses the rest of the day.
        """
        replay = self.recorded(partition, offset)
        if replay is not None:
            return replay
        if refusal is not None:
            verdict = refusal
        elif self.count < limit:
            self.count += 1
            verdict = ADMITTED
        else:
            verdict = quota_refusal(self, limit)
        if not verdict.admitted:
            self._record_refusal(partition, offset, verdict)
        self.positions[partition] = offset
        self.dirty = True
        return verdict

    def _record_refusal(self, partition: int, offset: int, verdict: Verdict) -> None:
        assert verdict.code is not None
        previous = self.positions.get(partition, -1)
        for run in reversed(self.refused):
            if run.partition != partition:
                continue
            # Extend the partition's latest run when the previous record of this tenant was in it.
            if run.last == previous and run.code == verdict.code and run.reason == verdict.reason:
                run.last = offset
                return
            break
        self.refused.append(RefusedRun(partition, offset, offset, verdict.code, verdict.reason))
        del self.refused[:-MAX_RUNS]

    # -- storage form ------------------------------------------------------------------------------

    def as_doc(self) -> dict:
        return {
            "tenant_id": self.tenant_id,
            "day": self.day,
            "count": self.count,
            "positions": {str(p): o for p, o in self.positions.items()},
            "refused": [r.as_doc() for r in self.refused],
        }

    @classmethod
    def from_doc(cls, doc: dict) -> Counter:
        return cls(
            key=doc["_id"],
            tenant_id=doc["tenant_id"],
            day=doc["day"],
            count=doc["count"],
            positions={int(p): o for p, o in doc.get("positions", {}).items()},
            refused=[RefusedRun.from_doc(r) for r in doc.get("refused", [])],
            seq=doc.get("seq", 0),
        )


class AdmissionConflict(TransientError):
    """A counter changed in the store since it was loaded: another router owns the partition now."""


class AdmissionStore:
    """Counters in one collection. FerretDB 1.x stalls on bulk writes of more than ~50 existing
    documents, so writes go in chunks of ``chunk``."""

    def __init__(self, collection: AsyncCollection, *, chunk: int = 32) -> None:
        self.collection = collection
        self.chunk = chunk

    @staticmethod
    def key(tenant_id: str, day: str) -> str:
        return f"{tenant_id}|{day}"

    async def load(self, keys: Iterable[tuple[str, str]]) -> dict[str, Counter]:
        wanted = {self.key(t, d): (t, d) for t, d in keys}
        found: dict[str, dict] = {}
        ids = list(wanted)
        for i in range(0, len(ids), self.chunk * 4):
            async for doc in self.collection.find({"_id": {"$in": ids[i:i + self.chunk * 4]}}):
                found[doc["_id"]] = doc
        return {
            k: Counter.from_doc(found[k]) if k in found else Counter(k, tenant_id, day)
            for k, (tenant_id, day) in wanted.items()
        }

    async def save(self, counters: Mapping[str, Counter] | Iterable[Counter]) -> None:
        """Write the changed counters; raise ``AdmissionConflict`` if another writer got there first.

        A conflict leaves the counters written before it in place; that is safe, because the batch is
        redelivered and every record a written counter covers replays its verdict.
        """
        if isinstance(counters, Mapping):
            counters = counters.values()
        dirty = [c for c in counters if c.dirty]
        new = [c for c in dirty if c.seq == 0]
        stored = [c for c in dirty if c.seq > 0]
        for i in range(0, len(new), self.chunk):
            chunk = new[i:i + self.chunk]
            try:
                await self.collection.bulk_write(
                    [InsertOne({"_id": c.key, "seq": 1, **c.as_doc()}) for c in chunk], ordered=False
                )
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if errors and all(e.get("code") == DUPLICATE_KEY for e in errors):
                    raise AdmissionConflict(f"{len(errors)} admission counters were created concurrently") from exc
                raise
            self._written(chunk)
        for i in range(0, len(stored), self.chunk):
            chunk = stored[i:i + self.chunk]
            result = await self.collection.bulk_write(
                [UpdateOne({"_id": c.key, "seq": c.seq}, {"$set": {"seq": c.seq + 1, **c.as_doc()}}) for c in chunk],
                ordered=False,
            )
            if result.matched_count != len(chunk):
                raise AdmissionConflict(
                    f"{len(chunk) - result.matched_count} admission counters changed since they were read"
                )
            self._written(chunk)

    @staticmethod
    def _written(chunk: list[Counter]) -> None:
        for c in chunk:
            c.seq += 1
            c.dirty = False

    async def used_today(self, tenant_id: str, day: str) -> int:
        doc = await self.collection.find_one({"_id": self.key(tenant_id, day)})
        return doc["count"] if doc else 0

    async def prune(self, *, keep_days: int, today: date | None = None) -> int:
        """Delete counters of days before the last ``keep_days``: nothing replays that far back, and
        a small collection keeps FerretDB's per-update cost down."""
        today = today or datetime.now(UTC).date()
        oldest = (today - timedelta(days=keep_days - 1)).isoformat()
        result = await self.collection.delete_many({"day": {"$lt": oldest}})
        if result.deleted_count:
            log.info("pruned %d admission counters older than %s", result.deleted_count, oldest)
        return result.deleted_count
