"""The admission state of the router, as plain code: counts, refusals, the owner documents' logs, fences.

``PartitionDay`` decides each submitted query of one partition and day, in offset order, and knows
what it decided before (a redelivered record gets the same verdict). ``OwnerDay`` is one router
process's document for one day, folded from its log of entries; the storage forms (``as_doc``,
``change_doc``, the entries) are what ``AdmissionStore`` (``admission.py``) appends through the
``ports.AdmissionLog`` port. ``plan_take_over`` and ``carried_counts`` are the decisions of a router
that gets a partition it holds no state for. See ``admission.py`` for how they keep quotas exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelyard_events import RejectCode

#: Refused runs kept per document; the oldest are long committed when a day has this many status changes.
MAX_RUNS = 1024
#: Entries of an owner document's log between two snapshots: a reader folds at most this many, and
#: a snapshot (whose size grows with the tenants of the day) is written once per this many batches.
SNAPSHOT_EVERY = 256


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
    #: A rate-limit refusal: seconds until the request would pass (None on a replayed verdict).
    retry_after_s: float | None = None

    @property
    def admitted(self) -> bool:
        return self.code is None


ADMITTED = Verdict()

#: Builds the refusal of a tenant over its limit from (admissions so far today, limit).
QuotaRefusal = Callable[[int, int], Verdict]
#: Decides a request within the daily quota against the tenant's rates, moving its rate state
#: (``TenantCount.tat_*``) when it admits (see ``modelyard_core.ratelimit``).
RateCheck = Callable[["TenantCount"], Verdict]


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
    #: Rate-limit state: theoretical arrival times (µs) of its next request and next token.
    tat_requests: int = 0
    tat_tokens: int = 0


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
              quota_refusal: QuotaRefusal | None = None, rate: RateCheck | None = None) -> Verdict:
        """Decide one record, in offset order.

        A redelivered record gets its recorded verdict. A new one is refused with ``refusal`` when
        given (e.g. a suspended tenant), admitted while the tenant's count is below ``limit`` and
        ``rate`` lets it through, and refused with ``quota_refusal(count, limit)`` from there on. A
        limit that grows (tier upgrade) resumes admissions; one that shrinks below the count refuses
        the rest of the day.
        """
        replay = self.recorded(tenant_id, offset)
        if replay is not None:
            return replay
        entry = self.tenants.setdefault(tenant_id, TenantCount())
        if refusal is not None:
            verdict = refusal
        elif entry.count < limit:
            verdict = rate(entry) if rate is not None else ADMITTED
            if verdict.admitted:
                entry.count += 1
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
                            {t: TenantCount(c.count, c.last, c.tat_requests, c.tat_tokens) for t, c in self.tenants.items()},
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
            "tenants": [{"t": t, "n": c.count, "last": c.last, **({"rq": c.tat_requests, "tk": c.tat_tokens} if c.tat_requests else {})}
                        for t, c in tenants.items()],
        }
        if refused:
            doc["refused"] = [r.as_doc() for r in self.refused]
        return doc

    def apply(self, change: dict) -> None:
        """Fold a written change into this state."""
        self.epoch = change["epoch"]
        self.position = change["position"]
        for e in change.get("tenants", []):
            self.tenants[e["t"]] = TenantCount(e["n"], e["last"], e.get("rq", 0), e.get("tk", 0))
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


@dataclass
class TakeOver:
    """The fences a take-over needs before its states are written."""

    #: Documents holding the newest state of a taken partition: document key → (document, partitions).
    holders: dict[str, tuple[OwnerDay, list[int]]] = field(default_factory=dict)
    #: Routers that took a partition over but may not have written it yet: document key → {partition:
    #: the epoch it must not hold beyond}.
    takers: dict[str, dict[int, int]] = field(default_factory=dict)


def plan_take_over(mine: OwnerDay, partitions: Iterable[int], stored: list[OwnerDay]) -> TakeOver:
    """Continue each partition's newest state (or a new one) in ``mine``, and say whom to fence.

    The document that holds the newest state is fenced (marked as having lost the partition to
    ``mine``); if another router had already taken it from there (and may be about to write it),
    that router's document is fenced too. Until ``mine`` is written, a fenced document still holds
    the newest state for the next taker.
    """
    plan = TakeOver()
    newest_of = newest_states(stored)
    for partition in partitions:
        newest = newest_of.get(partition)
        if newest is None:
            mine.take(PartitionDay(partition, mine.day, dirty=True, whole=True))
            continue
        state, holder = newest
        taker = holder.fenced.get(partition)
        if taker is None and holder.key != mine.key:
            plan.holders.setdefault(holder.key, (holder, []))[1].append(partition)
        elif taker is not None and taker != mine.key:
            plan.takers.setdefault(taker, {})[partition] = state.epoch
        mine.take(state.moved())
    return plan


def moved_on(doc: OwnerDay, partitions: Mapping[int, int]) -> bool:
    """Whether ``doc`` holds one of ``partitions`` beyond the given epoch: its router took it over
    and wrote it meanwhile, so fencing it now would lose what it decided."""
    return any(p in doc.parts and doc.parts[p].epoch > epoch for p, epoch in partitions.items())


def carried_counts(stored: list[OwnerDay], mine: OwnerDay, partition: int, tenant_ids: set[str]) -> dict[str, int]:
    """Highest count of each tenant in the newest states of the day's other partitions: where a tenant
    new to ``partition`` starts (its queries moved there when the topic got more partitions)."""
    counts: dict[str, int] = {}
    for p, (state, _) in newest_states([mine, *stored]).items():
        if p == partition:
            continue
        for t in tenant_ids & state.tenants.keys():
            counts[t] = max(counts.get(t, 0), state.tenants[t].count)
    return counts
