"""The metering sink: fold a batch of usage events into usage documents, exactly once.

Per batch (after OpenMeter's sink: buffer, dedupe, write in bulk, then commit):

1. Drop replays. Every usage document stores a *watermark*: the highest source offset already
   folded into it, per partition (``wm.<partition>``), written in the same document as its
   counters. An event at or below its document's watermark was applied before a crash or a
   rebalance and is skipped for that document.
2. Drop duplicates: an event id already counted at a *different* offset of the same partition (an
   upstream re-publish, e.g. a worker that crashed after publishing) is skipped. Usage events are
   keyed by tenant, so a re-published call lands on the same partition. The ids of each flush are
   inserted as one ``usage_seen`` document *before* the counters, with their offsets, so a replay
   is never mistaken for a duplicate. The last ``dedup_window`` ids of each partition are checked
   (kept in memory; on disk for ``dedup_retention_days`` at most).
3. Write every touched document's *new state* (counters, watermark, what it emits; see 4), in
   bulk, as a redo-logged replace:

   a. insert the new states into ``usage_journal`` (the commit point);
   b. per collection, one ``delete`` of the old states, guarded by their version ids
      (``vid``, unique per written state), then one ``insert`` of the new states;
   c. delete the journal.

   A crash after (a) is repaired before any document is read again: pending journals are re-applied
   (b is idempotent: a state already replaced is not deleted again, its re-insert is a duplicate
   key and is skipped). The version guard is a compare-and-set: if a document's state is not the
   one this process read (a second writer after a rebalance, a zombie consumer), its old state is
   not deleted, the insert of ours fails on the duplicate ``_id``, and the batch fails as
   transient and is re-run from freshly read documents, whose watermarks tell what was applied.
4. What a document's update emits (the tenant-day's ``metering.usage`` message, quota alerts) is
   decided before the write and stored in the *same* state (``last_out``; ``alerted.<key>``
   records each alert sent). The service publishes it after the writes; only then does the handler
   return and the batch's offsets get committed. If the process dies in between, the replay finds
   the document's events at or below its watermark and re-publishes the stored ``last_out`` byte
   for byte: the same event ids and values, never a different alert and never a lost one. A flush
   that re-sends a document's ``last_out`` and also updates the document keeps the re-sent
   messages in the new ``last_out`` (they are not known to be published until it commits).
   Consumers dedupe on ``event_id`` (a re-sent message is a copy, never a new fact).

Why replace, not ``$inc``: FerretDB 1.24 on SQLite (the no-Docker backend of dev and CI) has no
filter pushdown for writes: every ``update``/``delete`` scans and decodes the whole collection, so
one ``$inc`` per document costs O(collection) and a flush O(documents x collection) (measured: 30 ms
per update at 150 documents). Inserts and ``find_one({_id})`` are O(1). The replace costs one scan
per collection per flush. On MongoDB both are cheap. Readers may, for the milliseconds between the
delete and the insert of a collection, miss a document that is being replaced (never double count).

Documents are cached (LRU, ``doc_cache_size``) while this process consumes their partitions without a
gap; a gap or rewind (restart, rebalance, a failed batch) makes the partition "cold": its documents and
recent ids are read again. The cache is updated only after the database accepted the write. Counters
are integers (nano-dollars, microseconds; see ``fold``), summed in Python, so totals do not depend on
how a stream was cut into flushes.

Assumptions: one source topic per sink (watermarks are keyed by partition); its offsets never restart
(recreating the usage topic requires dropping the watermarks); de-duplication across partitions is
not attempted (the key is the tenant).

Size: the steps above are one exactly-once protocol, kept in one module until it is split into a
pure core and its MongoDB adapter (issue 15).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from modelyard_core.bus import Delivery, TransientError
from modelyard_events import MeteringUsage, TenantAlert, UsageCounters, UsageRecorded, derived_id
from modelyard_usage import AGENTS, COLLECTIONS, DAILY, MONTHLY, TENANT_DAILY

from .alerts import Scope, alert_key
from .fold import DOC_COUNTERS, Fold, contribution, to_counters
from .recent import RecentIds

log = logging.getLogger(__name__)

SEEN = "usage_seen"  # event ids of each flush, for de-duplication
JOURNAL = "usage_journal"  # new states of a flush being written (empty between flushes)

#: Documents per insert command.
WRITE_CHUNK = 500
#: New document states per journal document (a few KB each).
JOURNAL_CHUNK = 2_000

#: (tenant_id, scope, period, totals after this flush, alert keys already recorded) -> alerts due now.
AlertPolicy = Callable[[str, Scope, str, UsageCounters, Collection[str]], list[TenantAlert]]

PartitionKey = tuple[str, int]  # (topic, partition)
DocKey = tuple[str, str]  # (collection, _id)


class UsageConflict(TransientError):
    """A usage document changed under this process; the batch is re-run from fresh reads."""


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

    def watermark(self, partition: int) -> int:
        return (self.doc.get("wm") or {}).get(str(partition), -1)

    @property
    def alerted(self) -> frozenset[str]:
        return frozenset(self.doc.get("alerted") or {})


@dataclass
class _Pending:
    """One document's update in the flush being applied."""

    doc: CachedDoc
    fold: Fold
    out: list[MeteringUsage | TenantAlert] = field(default_factory=list)
    new_alerts: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # the new state, written in this flush


@dataclass
class PartitionState:
    """What this process knows about one source partition while it consumes it without a gap."""

    #: Recently counted event ids → the offset they were counted at (a window of fixed size).
    seen: RecentIds
    next_offset: int = -1


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


def _stored(events: list[MeteringUsage | TenantAlert]) -> str:
    """Events as ``last_out`` keeps them (JSON text: one string is cheap to store and to scan)."""
    if not events:
        return ""
    return json.dumps([{"kind": "usage" if isinstance(e, MeteringUsage) else "alert", "event": e.model_dump(mode="json")}
                       for e in events])


def _revived(stored: str) -> list[MeteringUsage | TenantAlert]:
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


class UsageSink:
    def __init__(self, db: AsyncDatabase, *, dedup_retention_days: int = 7, dedup_window: int = 100_000,
                 doc_cache_size: int = 50_000, prune_interval_s: float = 600.0,
                 alert_policy: AlertPolicy | None = None, write_chunk: int = WRITE_CHUNK) -> None:
        self.db = db
        self.retention = timedelta(days=dedup_retention_days)
        self.dedup_window = dedup_window
        self.doc_cache_size = doc_cache_size
        self.prune_interval_s = prune_interval_s
        self.alert_policy = alert_policy
        self.write_chunk = write_chunk
        self.partitions: dict[PartitionKey, PartitionState] = {}
        self.docs: OrderedDict[DocKey, CachedDoc] = OrderedDict()
        self._last_prune = float("-inf")
        #: doc_keys() by (tenant, day, model, class, agent): most events of a flush share a handful.
        self._targets: dict[tuple, list[tuple[str, str, dict]]] = {}

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

    async def ensure_indexes(self) -> None:
        await self.db[SEEN].create_index([("topic", 1), ("partition", 1), ("last_offset", DESCENDING)])
        await self.db[SEEN].create_index([("expires_at", 1)])
        for name in COLLECTIONS:
            await self.db[name].create_index([("tenant_id", 1)])

    async def prune_seen(self) -> int:
        """Forget id lists past their retention, or older than every partition's in-memory window."""
        deleted = (await self.db[SEEN].delete_many({"expires_at": {"$lt": datetime.now(UTC)}})).deleted_count
        for (topic, partition), state in self.partitions.items():
            oldest = state.seen.oldest_offset()
            if oldest is not None and len(state.seen) >= self.dedup_window:  # full: older lists are never read again
                res = await self.db[SEEN].delete_many({"topic": topic, "partition": partition, "last_offset": {"$lt": oldest}})
                deleted += res.deleted_count
        self._last_prune = time.monotonic()
        return deleted

    async def maybe_prune(self) -> int:
        """``prune_seen`` at most once per ``prune_interval_s`` (cheap to call after every flush)."""
        if time.monotonic() - self._last_prune < self.prune_interval_s:
            return 0
        deleted = await self.prune_seen()
        if deleted:
            log.info("pruned %d de-duplication records", deleted)
        return deleted

    # -----------------------------------------------------------------------------------------------

    async def apply(self, deliveries: list[Delivery[UsageRecorded]]) -> FlushResult:
        by_partition: dict[PartitionKey, list[tuple[UsageRecorded, int]]] = defaultdict(list)
        for d in deliveries:
            if d.event is not None:
                by_partition[(d.record.topic, d.record.partition)].append((d.event, d.record.offset))
        for events in by_partition.values():
            events.sort(key=lambda eo: eo[1])
        if not by_partition:
            return FlushResult()
        try:
            return await self._apply(by_partition)
        except BaseException:
            # Whatever was or was not written, the next attempt must read it back: go cold.
            for key in by_partition:
                self._forget(key)
            raise

    async def _apply(self, by_partition: dict[PartitionKey, list[tuple[UsageRecorded, int]]]) -> FlushResult:
        result = FlushResult()
        pending: dict[DocKey, _Pending] = {}
        replayed_docs: dict[DocKey, CachedDoc] = {}
        new_ids: dict[PartitionKey, list[tuple[str, int]]] = {}
        # Cold transitions first (they evict cached documents), then the reads.
        states = await self._partitions({pkey: events[0][1] for pkey, events in by_partition.items()})
        keys = {pkey: [(e, o, self._targets_of(e)) for e, o in events] for pkey, events in by_partition.items()}
        result.docs_read = await self._load(keys)
        for pkey, events in by_partition.items():
            topic, partition = pkey
            fresh = self._dedupe(states[pkey], keys[pkey], result)
            new_ids[pkey] = [(e.event_id, o) for e, o, _ in fresh if e.event_id not in states[pkey].seen]
            await self._record_seen(topic, partition, new_ids[pkey])
            self._fold(partition, fresh, pending, replayed_docs, result)
            result.max_offsets[partition] = events[-1][1]

        # A replayed document's last state may have been written but its output never published.
        republish = [d for d in replayed_docs.values() if d.doc.get("last_out") and not d.republished]
        resent: dict[int, list[MeteringUsage | TenantAlert]] = {}
        for doc in republish:
            resent[id(doc)] = _revived(doc.doc["last_out"])
            for event in resent[id(doc)]:
                self._collect(result, event)
                result.republished += 1

        for (coll, _id), p in pending.items():
            self._decide_outputs(coll, p)
            # Outputs re-sent by this flush are not known to be published until it commits: the new
            # state keeps them with its own, or a second crash would lose them.
            unsent = resent.get(id(p.doc), []) + p.out
            p.state = next_state(p.doc.doc, p.doc.ident, _id, p.fold, _stored(unsent), p.new_alerts)
        await self._write(pending)
        result.documents = len(pending)

        # The database holds it now: bring the cache up to date and move the partitions on.
        for p in pending.values():
            p.doc.doc = p.state
            p.doc.republished = True  # its last_out goes out with this flush (or the flush is retried cold)
            for event in p.out:
                self._collect(result, event)
        for doc in republish:
            doc.republished = True  # (updated ones too: their new last_out is published by this flush)
        for pkey, events in by_partition.items():
            state = states[pkey]
            state.next_offset = events[-1][1] + 1
            for event_id, offset in new_ids[pkey]:
                state.seen.add(event_id, offset)
        while len(self.docs) > self.doc_cache_size:
            self.docs.popitem(last=False)
        return result

    def _fold(self, partition: int, fresh: list[tuple[UsageRecorded, int, list]], pending: dict[DocKey, _Pending],
              replayed_docs: dict[DocKey, CachedDoc], result: FlushResult) -> None:
        """Fold one partition's fresh events into the pending update of each of their documents."""
        if not fresh:
            return
        wm_key, first = str(partition), fresh[0][1]

        def pending_of(coll: str, _id: str, doc: CachedDoc) -> _Pending:
            p = pending.get((coll, _id))
            if p is None:
                # Fewer fields, cheaper writes: roll-ups by month and agent keep no histogram.
                p = pending[(coll, _id)] = _Pending(doc, Fold(histogram=coll in (DAILY, TENANT_DAILY)))
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

    @staticmethod
    def _collect(result: FlushResult, event: MeteringUsage | TenantAlert) -> None:
        (result.usage if isinstance(event, MeteringUsage) else result.alerts).append(event)

    # -- partitions and the cache -------------------------------------------------------------------

    def _forget(self, pkey: PartitionKey) -> None:
        self.partitions.pop(pkey, None)
        for key in [k for k, d in self.docs.items() if pkey in d.partitions]:
            del self.docs[key]

    async def _partitions(self, firsts: dict[PartitionKey, int]) -> dict[PartitionKey, PartitionState]:
        """Each partition's state: kept if the batch continues where the last one ended, else cold."""
        states: dict[PartitionKey, PartitionState] = {}
        cold: dict[PartitionKey, PartitionState] = {}
        for pkey, first_offset in firsts.items():
            state = self.partitions.get(pkey)
            if state is not None and state.next_offset == first_offset:
                states[pkey] = state
                continue
            # Cold: first batch of this partition here, or a gap/rewind. Forget what we knew, re-read.
            self._forget(pkey)
            states[pkey] = cold[pkey] = self.partitions[pkey] = PartitionState(RecentIds(self.dedup_window))
        if not cold:
            return states
        # One query for all cold partitions (on FerretDB every filtered read scans the collection).
        loaded: dict[PartitionKey, int] = defaultdict(int)
        recent: dict[PartitionKey, dict[str, int]] = defaultdict(dict)
        for topic in {t for t, _ in cold}:
            wanted = sorted(p for t, p in cold if t == topic)
            cursor = self.db[SEEN].find({"topic": topic, "partition": {"$in": wanted}}, sort=[("last_offset", DESCENDING)])
            async for doc in cursor:
                pkey = (topic, doc["partition"])
                if loaded[pkey] >= self.dedup_window:
                    continue
                seen, first = recent[pkey], doc["first_offset"]
                ids = json.loads(doc["ids"])
                for event_id, delta in zip(ids, json.loads(doc["deltas"]), strict=True):
                    seen.setdefault(event_id, first + delta)
                loaded[pkey] += len(ids)
        for pkey, state in cold.items():
            # Oldest first, so that a full window keeps the newest ids.
            for event_id, offset in sorted(recent[pkey].items(), key=lambda kv: kv[1]):
                state.seen.add(event_id, offset)
            log.info("partition %s[%d] cold at offset %d: %d recent event ids loaded", *pkey, firsts[pkey], loaded[pkey])
        return states

    async def _load(self, keys: dict[PartitionKey, list[tuple[UsageRecorded, int, list]]]) -> int:
        """Read every touched document that is not cached; mark each as its partitions' document."""
        touched: dict[DocKey, tuple[dict, set[PartitionKey]]] = {}
        for pkey, items in keys.items():
            for _, _, targets in items:
                for coll, _id, ident in targets:
                    entry = touched.get((coll, _id))
                    if entry is None:
                        touched[(coll, _id)] = (ident, {pkey})
                    else:
                        entry[1].add(pkey)
        missing: dict[str, list[str]] = defaultdict(list)
        for coll, _id in touched:
            if (coll, _id) not in self.docs:
                missing[coll].append(_id)
        if missing:
            # An interrupted flush must be finished before its documents are read.
            await self.recover()
        for coll, ids in missing.items():
            found = {doc["_id"]: doc async for doc in self.db[coll].find({"_id": {"$in": ids}})}
            for _id in ids:
                self.docs[(coll, _id)] = CachedDoc(touched[(coll, _id)][0], found.get(_id) or {})
        for key, (_, pkeys) in touched.items():
            self.docs.move_to_end(key)
            self.docs[key].partitions.update(pkeys)
        return sum(len(ids) for ids in missing.values())

    # -- de-duplication -----------------------------------------------------------------------------

    def _dedupe(self, state: PartitionState, items: list[tuple[UsageRecorded, int, list]],
                result: FlushResult) -> list[tuple[UsageRecorded, int, list]]:
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
        return fresh

    async def _record_seen(self, topic: str, partition: int, new: list[tuple[str, int]]) -> None:
        if not new:
            return
        # Written before the counters, with offsets: after a crash in between, the replayed events
        # carry the same offsets and are recognised as replays, not as duplicates. An insert (O(1)
        # on FerretDB) under a deterministic id: a retried flush finds its list already there.
        first = new[0][1]
        try:
            await self.db[SEEN].insert_one({
                "_id": f"{topic}|{partition}|{first}-{new[-1][1]}|{new[0][0]}",
                "topic": topic, "partition": partition, "first_offset": first, "last_offset": new[-1][1],
                # Compact: JSON text of the ids and of their offsets' distances from the first
                # (one string each: cheap for FerretDB to store and to scan past).
                "ids": json.dumps([i for i, _ in new]), "deltas": json.dumps([o - first for _, o in new]),
                "expires_at": datetime.now(UTC) + self.retention,
            })
        except DuplicateKeyError:
            pass

    # -- outputs ------------------------------------------------------------------------------------

    def _decide_outputs(self, coll: str, p: _Pending) -> None:
        """The metering.usage message and the alerts this update emits (stored with it)."""
        if coll not in (TENANT_DAILY, MONTHLY):
            return
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
        if self.alert_policy is not None:
            for alert in self.alert_policy(tenant_id, scope, period, totals, p.doc.alerted):
                p.out.append(alert)
                p.new_alerts.append(alert_key(alert.metric, alert.threshold_pct))

    # -- writing ------------------------------------------------------------------------------------

    async def _write(self, pending: dict[DocKey, _Pending]) -> None:
        entries = [{"c": coll, "prev": p.doc.doc.get("vid") if p.doc.doc else None, "exists": bool(p.doc.doc),
                    "state": p.state} for (coll, _), p in pending.items()]
        if not entries:
            return
        # The commit point: from here on the flush is finished, by this process or by recovery.
        # (Several journal documents for a large flush: each stays far below the 16 MB limit, and
        # each is complete on its own, since every document is replaced independently.)
        journal = [{"_id": uuid.uuid4().hex, "at": datetime.now(UTC), "entries": json.dumps(entries[i:i + JOURNAL_CHUNK])}
                   for i in range(0, len(entries), JOURNAL_CHUNK)]
        await self.db[JOURNAL].insert_many(journal)
        conflicts = await self._replace(entries, recovering=False)
        await self.db[JOURNAL].delete_many({"_id": {"$in": [j["_id"] for j in journal]}})
        if conflicts:
            raise UsageConflict(f"{len(conflicts)} usage documents changed under this process, e.g. {conflicts[0]}")

    async def _replace(self, entries: list[dict], *, recovering: bool) -> list[str]:
        """Replace old states by new ones, guarded by version ids; return the ids that conflicted."""
        by_coll: dict[str, list[dict]] = defaultdict(list)
        for entry in entries:
            by_coll[entry["c"]].append(entry)
        # Collections are independent: replace them concurrently (the server overlaps the scans).
        tasks = [asyncio.ensure_future(self._replace_in(coll, items)) for coll, items in by_coll.items()]
        try:
            found = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # the journal finishes what they would have done
                task.cancel()
            raise
        conflicts = [_id for ids in found for _id in ids]
        if conflicts and recovering:
            return []  # already replaced (by the interrupted flush itself) or superseded since
        return conflicts

    async def _replace_in(self, coll: str, items: list[dict]) -> list[str]:
        old = [e for e in items if e["exists"]]
        if old:
            # Deletes only states that are still the ones the new states were computed from.
            await self.db.command({"delete": coll, "deletes": [{"q": {
                "_id": {"$in": [e["state"]["_id"] for e in old]},
                "vid": {"$in": sorted({e["prev"] for e in old}, key=lambda v: v or "")},
            }, "limit": 0}]})
        conflicts: list[str] = []
        states = [e["state"] for e in items]
        for i in range(0, len(states), self.write_chunk):
            chunk = states[i:i + self.write_chunk]
            reply = await self.db.command({"insert": coll, "documents": chunk, "ordered": False})
            for err in reply.get("writeErrors") or []:
                if err.get("code") != 11000:
                    raise RuntimeError(f"insert into {coll} failed: {err}")
                conflicts.append(chunk[err["index"]]["_id"])
        return conflicts

    async def recover(self) -> int:
        """Finish flushes that were interrupted between their journal and its deletion."""
        journals = [j async for j in self.db[JOURNAL].find({})]
        for journal in journals:
            await self._replace(json.loads(journal["entries"]), recovering=True)
            await self.db[JOURNAL].delete_one({"_id": journal["_id"]})
        if journals:
            log.warning("finished %d interrupted flush(es) from the journal", len(journals))
        return len(journals)

