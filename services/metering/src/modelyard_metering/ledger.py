"""The metering core: what a flush does to usage documents, as plain code (no I/O).

``Ledger`` is what one process knows between flushes: per source partition, where its last batch
ended and the window of recently counted event ids; per usage document, its last stored state (an
LRU cache). Its methods are the decisions of a flush: which partitions continue and which went cold,
which events are duplicates, which are replays of what a document already holds, what each document
adds and emits, and how the cache moves on once the database accepted the write. ``UsageSink``
(``sink.py``) runs them in order around the storage calls (``ports.UsageStore``).

The document cache is an ``OrderedDict`` rather than cachetools' ``LRUCache``: it is trimmed only
after a flush is written (an LRU evicting while a flush runs would drop documents that flush still
folds into), and it forgets every document of a partition that goes cold.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date
from typing import Any

from modelyard_events import MeteringUsage, TenantAlert, UsageCounters, UsageRecorded, derived_id
from modelyard_usage import AGENTS, COLLECTIONS, DAILY, MONTHLY, TENANT_DAILY

from .alerts import Scope, alert_key
from .fold import DOC_COUNTERS, Fold, contribution, to_counters
from .recent import RecentIds

#: (tenant_id, scope, period, totals after this flush, alert keys already recorded) -> alerts due now.
AlertPolicy = Callable[[str, Scope, str, UsageCounters, Collection[str]], list[TenantAlert]]

PartitionKey = tuple[str, int]  # (topic, partition)
DocKey = tuple[str, str]  # (collection, _id)
#: A usage event with its source offset and the documents it adds to (``doc_keys``).
Item = tuple[UsageRecorded, int, list[tuple[str, str, dict]]]
Output = MeteringUsage | TenantAlert


def doc_keys(e: UsageRecorded) -> list[tuple[str, str, dict]]:
    """(collection, _id, identifying fields) of every document one usage event adds to."""
    day = e.time.astimezone(UTC).date().isoformat()
    month = day[:7]
    keys = [
        (DAILY, f"{e.tenant_id}|{day}|{e.model}", {"tenant_id": e.tenant_id, "day": day, "model": e.model, "model_class": e.model_class.value}),
        (TENANT_DAILY, f"{e.tenant_id}|{day}", {"tenant_id": e.tenant_id, "day": day}),
        (MONTHLY, f"{e.tenant_id}|{month}", {"tenant_id": e.tenant_id, "month": month}),
    ]
    if e.agent_id:
        keys.append((AGENTS, f"{e.tenant_id}|{month}|{e.agent_id}", {"tenant_id": e.tenant_id, "month": month, "agent_id": e.agent_id}))
    return keys


@dataclass
class CachedDoc:
    """A usage document as this process knows the database holds it ({} while there is none)."""

    ident: dict[str, str]
    doc: dict[str, Any] = field(default_factory=dict)
    #: Source partitions whose batches read or wrote it: it is forgotten when one of them goes cold.
    partitions: set[PartitionKey] = field(default_factory=set)
    #: ``last_out`` was published by a flush of this process (re-sending it after a replay once is enough).
    republished: bool = False

    @property
    def alerted(self) -> frozenset[str]:
        return frozenset(self.doc.get("alerted") or {})


@dataclass
class Pending:
    """One document's update in the flush being applied."""

    doc: CachedDoc
    fold: Fold
    out: list[Output] = field(default_factory=list)
    new_alerts: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # the new state, written in this flush


@dataclass
class PartitionState:
    """What this process knows about one source partition while it consumes it without a gap."""

    #: Recently counted event ids → the offset they were counted at (a window of fixed size).
    seen: RecentIds
    next_offset: int = -1


@dataclass
class Touched:
    """The documents a flush adds to (with the partitions adding to each) and, per collection, the
    ids of those not cached, which must be read first."""

    docs: dict[DocKey, tuple[dict, set[PartitionKey]]]
    missing: dict[str, list[str]]


@dataclass
class FlushResult:
    """What one flush did, and what to publish now that its writes are durable."""

    counted: int = 0
    replayed: int = 0
    duplicates: int = 0
    #: Usage documents written, and read (a warm flush reads none it has seen before).
    documents: int = 0
    docs_read: int = 0
    #: ``metering.usage`` messages (new ones, and stored ones re-published after a replay).
    usage: list[MeteringUsage] = field(default_factory=list)
    #: Quota alerts (new ones, and stored ones re-published after a replay).
    alerts: list[TenantAlert] = field(default_factory=list)
    republished: int = 0
    max_offsets: dict[int, int] = field(default_factory=dict)

    def emit(self, event: Output) -> None:
        (self.usage if isinstance(event, MeteringUsage) else self.alerts).append(event)


def stored_outputs(events: list[Output]) -> str:
    """Events as ``last_out`` keeps them (JSON text: one string is cheap to store and to scan)."""
    if not events:
        return ""
    return json.dumps([{"kind": "usage" if isinstance(e, MeteringUsage) else "alert", "event": e.model_dump(mode="json")}
                       for e in events])


def revived_outputs(stored: str) -> list[Output]:
    return [(MeteringUsage if item["kind"] == "usage" else TenantAlert).model_validate(item["event"])
            for item in (json.loads(stored) if stored else [])]


def next_state(old: dict[str, Any], ident: dict[str, str], _id: str, fold: Fold, last_out: str,
               new_alerts: list[str]) -> dict[str, Any]:
    """The document after folding ``fold`` into ``old``: pure, so the journal can carry it."""
    new = dict(old)
    new.update(ident)
    new["_id"] = _id
    for key, value in fold.inc.items():
        new[key] = new.get(key, 0) + value
    if fold.hist:
        hist = dict(old.get("latency_le") or {})
        for bound, n in fold.hist.items():
            hist[bound] = hist.get(bound, 0) + n
        new["latency_le"] = hist
        new["latency_ms_max"] = max(fold.latency_max, old.get("latency_ms_max", 0.0))
    wm = dict(old.get("wm") or {})
    for part, offset in fold.offsets.items():
        wm[str(part)] = max(offset, wm.get(str(part), -1))
    new["wm"] = wm
    new["v"] = old.get("v", 0) + 1
    new["vid"] = uuid.uuid4().hex  # this state's version id: what the next replace is guarded by
    if last_out or old.get("last_out"):
        new["last_out"] = last_out
    if new_alerts:
        new["alerted"] = {**(old.get("alerted") or {}), **{k: True for k in new_alerts}}
    return new


def replacement(coll: str, p: Pending) -> dict[str, Any]:
    """What the store writes for one document: its new state, guarded by the version it replaces."""
    return {"c": coll, "prev": p.doc.doc.get("vid") if p.doc.doc else None, "exists": bool(p.doc.doc), "state": p.state}


class Ledger:
    """What this process knows between flushes, and the decisions of a flush (see the module docstring)."""

    def __init__(self, *, dedup_window: int, doc_cache_size: int) -> None:
        self.dedup_window = dedup_window
        self.doc_cache_size = doc_cache_size
        self.partitions: dict[PartitionKey, PartitionState] = {}
        self.docs: OrderedDict[DocKey, CachedDoc] = OrderedDict()
        #: doc_keys() by (tenant, day, model, class, agent): most events of a flush share a handful.
        #: (Cleared when full rather than an LRU: it is read once per event, on the hot path.)
        self._targets: dict[tuple, list[tuple[str, str, dict]]] = {}

    def items(self, events: list[tuple[UsageRecorded, int]]) -> list[Item]:
        """Each event with its offset and its documents."""
        return [(e, o, self._targets_of(e)) for e, o in events]

    def _targets_of(self, e: UsageRecorded) -> list[tuple[str, str, dict]]:
        t = e.time
        if t.utcoffset():  # events are stamped in UTC; convert only the others
            t = t.astimezone(UTC)
        key = (e.tenant_id, t.year, t.month, t.day, e.model, e.model_class, e.agent_id)
        targets = self._targets.get(key)
        if targets is None:
            if len(self._targets) > 100_000:
                self._targets.clear()
            targets = self._targets[key] = doc_keys(e)
        return targets

    # -- partitions ---------------------------------------------------------------------------------

    def forget(self, pkey: PartitionKey) -> None:
        """The partition goes cold: forget its state and every document its batches touched."""
        self.partitions.pop(pkey, None)
        for key in [k for k, d in self.docs.items() if pkey in d.partitions]:
            del self.docs[key]

    def continue_or_restart(self, firsts: dict[PartitionKey, int]) -> tuple[dict[PartitionKey, PartitionState], list[PartitionKey]]:
        """Each partition's state, and the cold ones: a state is kept if the batch starts where the
        last one ended; otherwise (first batch here, a gap, a rewind) it starts empty."""
        states: dict[PartitionKey, PartitionState] = {}
        cold: list[PartitionKey] = []
        for pkey, first_offset in firsts.items():
            state = self.partitions.get(pkey)
            if state is not None and state.next_offset == first_offset:
                states[pkey] = state
                continue
            self.forget(pkey)
            states[pkey] = self.partitions[pkey] = PartitionState(RecentIds(self.dedup_window))
            cold.append(pkey)
        return states, cold

    @staticmethod
    def remember(state: PartitionState, recent: dict[str, int]) -> None:
        """Fill a cold partition's window with the ids read back (oldest first: a full window keeps the newest)."""
        for event_id, offset in sorted(recent.items(), key=lambda kv: kv[1]):
            state.seen.add(event_id, offset)

    # -- documents ----------------------------------------------------------------------------------

    def touched(self, items: dict[PartitionKey, list[Item]]) -> Touched:
        """Every document the items add to, with the partitions adding to it, and those to read."""
        docs: dict[DocKey, tuple[dict, set[PartitionKey]]] = {}
        for pkey, part_items in items.items():
            for _, _, targets in part_items:
                for coll, _id, ident in targets:
                    entry = docs.get((coll, _id))
                    if entry is None:
                        docs[(coll, _id)] = (ident, {pkey})
                    else:
                        entry[1].add(pkey)
        missing: dict[str, list[str]] = {}
        for coll, _id in docs:
            if (coll, _id) not in self.docs:
                missing.setdefault(coll, []).append(_id)
        return Touched(docs, missing)

    def cache(self, touched: Touched, found: dict[str, dict[str, dict]]) -> None:
        """Cache the documents read (``found``: collection → _id → document; an id not found has no
        document yet), and mark every touched one as its partitions' and as recently used."""
        for coll, ids in touched.missing.items():
            in_store = found.get(coll, {})
            for _id in ids:
                self.docs[(coll, _id)] = CachedDoc(touched.docs[(coll, _id)][0], in_store.get(_id) or {})
        for key, (_, pkeys) in touched.docs.items():
            self.docs.move_to_end(key)
            self.docs[key].partitions.update(pkeys)

    # -- de-duplication and folding -----------------------------------------------------------------

    @staticmethod
    def dedupe(state: PartitionState, items: list[Item], result: FlushResult) -> tuple[list[Item], list[tuple[str, int]]]:
        """The fresh items (an id already counted at another offset is a duplicate), and the ids new
        to the partition's window, with their offsets (to be recorded before the counters)."""
        fresh = []
        batch_ids: dict[str, int] = {}
        seen = state.seen
        for item in items:
            e, offset = item[0], item[1]
            known = batch_ids.get(e.event_id)
            if known is None:
                known = seen.get(e.event_id)
            if known is not None and known != offset:
                result.duplicates += 1  # the same model call published again
                continue
            batch_ids[e.event_id] = offset
            fresh.append(item)
        return fresh, [(e.event_id, o) for e, o, _ in fresh if e.event_id not in seen]

    def fold(self, partition: int, fresh: list[Item], pending: dict[DocKey, Pending],
             replayed_docs: dict[DocKey, CachedDoc], result: FlushResult) -> None:
        """Fold one partition's fresh events into the pending update of each of their documents;
        an event at or below a document's watermark is a replay for that document."""
        if not fresh:
            return
        wm_key, first = str(partition), fresh[0][1]

        def pending_of(coll: str, _id: str, doc: CachedDoc) -> Pending:
            p = pending.get((coll, _id))
            if p is None:
                # Fewer fields, cheaper writes: roll-ups by month and agent keep no histogram.
                p = pending[(coll, _id)] = Pending(doc, Fold(histogram=coll in (DAILY, TENANT_DAILY)))
            return p

        # Events with the same documents (same tenant, day, model, agent) share one targets list.
        groups: dict[int, tuple[list, list[tuple[UsageRecorded, int]]]] = {}
        for e, offset, targets in fresh:
            group = groups.get(id(targets))
            if group is None:
                group = groups[id(targets)] = (targets, [])
            group[1].append((e, offset))
        for targets, members in groups.values():
            docs = [self.docs[(coll, _id)] for coll, _id, _ in targets]
            if all((d.doc.get("wm") or {}).get(wm_key, -1) < first for d in docs):
                # No document of this group has seen this batch's offsets (the usual case): fold the
                # group once, then add it to each document.
                fold = Fold()
                fold.add_many(members, partition)
                for (coll, _id, _), doc in zip(targets, docs, strict=True):
                    pending_of(coll, _id, doc).fold.merge(fold)
                result.counted += len(members)
                continue
            for e, offset in members:  # after a crash or rebalance: decide per document
                counted, share = False, None
                for (coll, _id, _), doc in zip(targets, docs, strict=True):
                    if offset <= (doc.doc.get("wm") or {}).get(wm_key, -1):
                        replayed_docs[(coll, _id)] = doc  # folded before a crash or rebalance
                        continue
                    counted, share = True, share or contribution(e)
                    pending_of(coll, _id, doc).fold.add_contribution(share, partition, offset)
                if counted:
                    result.counted += 1
                else:
                    result.replayed += 1

    # -- outputs ------------------------------------------------------------------------------------

    @staticmethod
    def resend(replayed_docs: dict[DocKey, CachedDoc], result: FlushResult) -> dict[int, list[Output]]:
        """What replayed documents emitted last (it may never have been published), by ``id(doc)``;
        re-sent once per process."""
        resent: dict[int, list[Output]] = {}
        for doc in replayed_docs.values():
            if doc.doc.get("last_out") and not doc.republished:
                resent[id(doc)] = revived_outputs(doc.doc["last_out"])
                for event in resent[id(doc)]:
                    result.emit(event)
                    result.republished += 1
        return resent

    @staticmethod
    def decide(coll: str, _id: str, p: Pending, resent: list[Output], alert_policy: AlertPolicy | None) -> None:
        """The metering.usage message and alerts this update emits, and the document's new state,
        which stores them (with what this flush re-sends: not known to be published until it commits)."""
        if coll in (TENANT_DAILY, MONTHLY):
            after: dict[str, int] = {k: p.doc.doc.get(k, 0) for k in DOC_COUNTERS}
            for k, v in p.fold.inc.items():
                after[k] = after.get(k, 0) + v
            totals = to_counters(after)
            tenant_id = p.doc.ident["tenant_id"]
            if coll == TENANT_DAILY:
                day = p.doc.ident["day"]
                flush = ",".join(f"{part}:{o}" for part, o in sorted(p.fold.offsets.items()))
                p.out.append(MeteringUsage(
                    # Offsets never repeat: one id per update of this tenant-day, the same on a re-send.
                    event_id=derived_id(tenant_id, day, "metering", flush),
                    tenant_id=tenant_id, day=date.fromisoformat(day), delta=p.fold.counters(), totals=totals,
                ))
                scope, period = "day", day
            else:
                scope, period = "month", p.doc.ident["month"]
            if alert_policy is not None:
                for alert in alert_policy(tenant_id, scope, period, totals, p.doc.alerted):
                    p.out.append(alert)
                    p.new_alerts.append(alert_key(alert.metric, alert.threshold_pct))
        p.state = next_state(p.doc.doc, p.doc.ident, _id, p.fold, stored_outputs(resent + p.out), p.new_alerts)

    # -- after the write ----------------------------------------------------------------------------

    def committed(self, pending: dict[DocKey, Pending], resent_docs: list[CachedDoc],
                  moved: dict[PartitionKey, tuple[PartitionState, int, list[tuple[str, int]]]],
                  result: FlushResult) -> None:
        """The database holds the flush: the cache takes the new states, the outputs go out, each
        partition moves on to its next offset with its new ids, and the cache is trimmed."""
        for p in pending.values():
            p.doc.doc = p.state
            p.doc.republished = True  # its last_out goes out with this flush (or the flush is retried cold)
            for event in p.out:
                result.emit(event)
        for doc in resent_docs:
            doc.republished = True  # (updated ones too: their new last_out is published by this flush)
        for state, next_offset, new_ids in moved.values():
            state.next_offset = next_offset
            for event_id, offset in new_ids:
                state.seen.add(event_id, offset)
        while len(self.docs) > self.doc_cache_size:
            self.docs.popitem(last=False)
