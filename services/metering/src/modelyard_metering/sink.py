"""The metering sink: fold a batch of usage events into usage documents, exactly once.

Per batch (after OpenMeter's sink: buffer, dedupe, bulk write, then commit):

1. Drop replays. Every usage document stores a *watermark*: the highest source offset already
   folded into it, per partition, written in the same single-document update as its counters
   (FerretDB has no multi-document transactions; one document's update is atomic). An event at or
   below its document's watermark was applied before a crash or rebalance and is skipped for that
   document.
2. Drop duplicates: an event id already counted at a *different* offset (an upstream re-publish,
   e.g. a worker that crashed after publishing) is skipped. The ids of each batch are written as one
   document *before* the counters, with their offsets, so a replay is never mistaken for a duplicate.
3. One update per touched document, in bulk: ``$inc`` the counters and ``$max`` the watermark.
4. Only then does the handler return, and the batch's offsets are committed.

What is read from the database is cached per partition while this process consumes the partition
without a gap; a gap or rewind (restart, rebalance) makes the partition "cold" and it is re-read.
Usage events are keyed by tenant, so one tenant's documents are only ever written from one
partition, by its one owner.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pymongo import DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from modelyard_core.bus import Delivery
from modelyard_events import UsageCounters, UsageRecorded

from .fold import Fold, counters_of

log = logging.getLogger(__name__)

DAILY = "usage_daily"  # tenant, day, model
TENANT_DAILY = "usage_tenant_daily"  # tenant, day (all models)
MONTHLY = "usage_monthly"  # tenant, month (all models)
AGENTS = "usage_agents"  # tenant, month, agent
SEEN = "usage_seen"  # event ids of each flush, for de-duplication
COLLECTIONS = (DAILY, TENANT_DAILY, MONTHLY, AGENTS)

#: FerretDB 1.24 on SQLite stalls on bulk updates of more than about 50 existing documents; stay well below.
WRITE_CHUNK = 32


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
class PartitionState:
    """What this process knows about one source partition while it consumes it without a gap."""

    next_offset: int = -1
    #: Recently counted event ids → the offset they were counted at (bounded window).
    seen: OrderedDict[str, int] = field(default_factory=OrderedDict)
    #: Documents whose watermark and counters were read (or written) since the partition went cold.
    docs: dict[tuple[str, str], dict] = field(default_factory=dict)


@dataclass
class FlushResult:
    """What one flush changed: per tenant-day the delta and the new totals (for metering.usage and alerts)."""

    counted: int = 0
    replayed: int = 0
    duplicates: int = 0
    tenant_days: dict[tuple[str, str], tuple[UsageCounters, UsageCounters]] = field(default_factory=dict)
    tenant_months: dict[tuple[str, str], tuple[UsageCounters, UsageCounters]] = field(default_factory=dict)
    max_offsets: dict[int, int] = field(default_factory=dict)


class UsageSink:
    def __init__(self, db: AsyncDatabase, *, dedup_retention_days: int = 7, dedup_window: int = 200_000) -> None:
        self.db = db
        self.retention = timedelta(days=dedup_retention_days)
        self.dedup_window = dedup_window
        self.partitions: dict[tuple[str, int], PartitionState] = {}

    async def ensure_indexes(self) -> None:
        await self.db[SEEN].create_index([("topic", 1), ("partition", 1), ("last_offset", DESCENDING)])
        for name in COLLECTIONS:
            await self.db[name].create_index([("tenant_id", 1)])

    async def prune_seen(self) -> int:
        """Forget flushed id lists past their retention (FerretDB 1.x has no TTL indexes)."""
        res = await self.db[SEEN].delete_many({"expires_at": {"$lt": datetime.now(UTC)}})
        return res.deleted_count

    # -----------------------------------------------------------------------------------------------

    async def apply(self, deliveries: list[Delivery[UsageRecorded]]) -> FlushResult:
        result = FlushResult()
        by_partition: dict[tuple[str, int], list[tuple[UsageRecorded, int]]] = defaultdict(list)
        for d in deliveries:
            if d.event is not None:
                by_partition[(d.record.topic, d.record.partition)].append((d.event, d.record.offset))
        folds: dict[tuple[str, str], Fold] = {}
        identity: dict[tuple[str, str], dict] = {}
        for (topic, partition), events in by_partition.items():
            state = await self._state(topic, partition, events[0][1])
            await self._verify_docs(state, events)
            fresh = self._dedupe(state, partition, events, result)
            await self._record_seen(state, topic, partition, fresh)
            for e, offset in fresh:
                counted = False
                for coll, _id, ident in doc_keys(e):
                    doc = state.docs[(coll, _id)]
                    if offset <= doc.get("wm", {}).get(str(partition), -1):
                        continue  # already folded into this document before a crash or rebalance
                    counted = True
                    folds.setdefault((coll, _id), Fold()).add(e, partition, offset)
                    identity[(coll, _id)] = (ident, state)
                if counted:
                    result.counted += 1
                else:
                    result.replayed += 1
            state.next_offset = events[-1][1] + 1
            result.max_offsets[partition] = events[-1][1]

        await self._write(folds, identity)

        for (coll, _id), fold in folds.items():
            ident, state = identity[(coll, _id)]
            totals = counters_of(state.docs[(coll, _id)])
            if coll == TENANT_DAILY:
                result.tenant_days[(ident["tenant_id"], ident["day"])] = (fold.counters(), totals)
            elif coll == MONTHLY:
                result.tenant_months[(ident["tenant_id"], ident["month"])] = (fold.counters(), totals)
        return result

    async def _state(self, topic: str, partition: int, first_offset: int) -> PartitionState:
        key = (topic, partition)
        state = self.partitions.get(key)
        if state is not None and state.next_offset == first_offset:
            return state
        # Cold: first batch of this partition here, or a gap/rewind. Forget what we knew, re-read.
        state = PartitionState()
        cursor = self.db[SEEN].find({"topic": topic, "partition": partition}, sort=[("last_offset", DESCENDING)])
        loaded = 0
        async for doc in cursor:
            for event_id, offset in zip(doc["ids"], doc["offsets"], strict=True):
                state.seen.setdefault(event_id, offset)
            loaded += len(doc["ids"])
            if loaded >= self.dedup_window:
                break
        self.partitions[key] = state
        log.info("partition %s[%d] cold at offset %d: %d recent event ids loaded", topic, partition, first_offset, loaded)
        return state

    async def _verify_docs(self, state: PartitionState, events: list[tuple[UsageRecorded, int]]) -> None:
        """Read watermark and counters of every document not read since the partition went cold."""
        missing: dict[str, set[str]] = defaultdict(set)
        for e, _ in events:
            for coll, _id, _ in doc_keys(e):
                if (coll, _id) not in state.docs:
                    missing[coll].add(_id)
        for coll, ids in missing.items():
            found = {doc["_id"]: doc async for doc in self.db[coll].find({"_id": {"$in": sorted(ids)}})}
            for _id in ids:
                state.docs[(coll, _id)] = found.get(_id, {})

    def _dedupe(self, state: PartitionState, partition: int, events: list[tuple[UsageRecorded, int]],
                result: FlushResult) -> list[tuple[UsageRecorded, int]]:
        fresh = []
        batch_ids: dict[str, int] = {}
        for e, offset in events:
            known = batch_ids.get(e.event_id, state.seen.get(e.event_id))
            if known is not None and known != offset:
                result.duplicates += 1  # the same model call published again
                continue
            batch_ids[e.event_id] = offset
            fresh.append((e, offset))
        return fresh

    async def _record_seen(self, state: PartitionState, topic: str, partition: int,
                           fresh: list[tuple[UsageRecorded, int]]) -> None:
        new = [(e.event_id, o) for e, o in fresh if e.event_id not in state.seen]
        if not new:
            return
        # Written before the counters, with offsets: after a crash in between, the replayed events
        # carry the same offsets and are recognised as replays, not as duplicates.
        flush_id = f"{topic}|{partition}|{new[0][1]}-{new[-1][1]}"
        await self.db[SEEN].update_one({"_id": flush_id}, {"$setOnInsert": {
            "topic": topic, "partition": partition, "last_offset": new[-1][1],
            "ids": [i for i, _ in new], "offsets": [o for _, o in new],
            "expires_at": datetime.now(UTC) + self.retention,
        }}, upsert=True)
        for event_id, offset in new:
            state.seen[event_id] = offset
        while len(state.seen) > self.dedup_window:
            state.seen.popitem(last=False)

    async def _write(self, folds: dict[tuple[str, str], Fold], identity: dict) -> None:
        ops_by_coll: dict[str, list[UpdateOne]] = defaultdict(list)
        for (coll, _id), fold in folds.items():
            ident, state = identity[(coll, _id)]
            update: dict = {"$inc": dict(fold.inc), "$set": ident}
            maxes: dict = {f"wm.{p}": o for p, o in fold.offsets.items()}
            if fold.latency_max:
                maxes["latency_ms_max"] = fold.latency_max
            update["$max"] = maxes
            ops_by_coll[coll].append(UpdateOne({"_id": _id}, update, upsert=True))
            # Keep the cached copy equal to what the database now holds.
            doc = state.docs[(coll, _id)]
            for k, v in fold.inc.items():
                doc[k] = doc.get(k, 0) + v
            wm = doc.setdefault("wm", {})
            for p, o in fold.offsets.items():
                wm[str(p)] = max(o, wm.get(str(p), -1))
        for coll, ops in ops_by_coll.items():
            for i in range(0, len(ops), WRITE_CHUNK):
                await self.db[coll].bulk_write(ops[i:i + WRITE_CHUNK], ordered=False)
