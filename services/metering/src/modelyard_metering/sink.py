"""The metering sink: fold a batch of usage events into usage documents, exactly once.

``UsageSink.apply`` reads top to bottom as the steps of one flush (after OpenMeter's sink: buffer,
dedupe, write in bulk, then commit). The decisions are plain code in ``ledger.Ledger``; storage is
the ``ports.UsageStore`` port (``mongo.MongoUsageStore`` in the services).

1. Partitions: a partition whose batch starts where its last one ended is *warm* (its recent ids and
   documents are known); any other (first batch here, a gap, a rewind after a failed batch) is
   *cold*: what was known is forgotten and its recent ids are read back.
2. Documents: every usage document the batch adds to that is not cached is read, after finishing
   any flush that was interrupted (below, 6).
3. Per partition, drop duplicates, record the new ids, fold:

   a. an event id already counted at a *different* offset of the same partition (an upstream
      re-publish, e.g. a worker that crashed after publishing) is skipped. Usage events are keyed
      by tenant, so a re-published call lands on the same partition. The last ``dedup_window`` ids
      of each partition are checked (kept in memory; on disk for ``dedup_retention_days`` at most);
   b. the ids are recorded *before* the counters, with their offsets, so that after a crash in
      between a replay is never mistaken for a duplicate;
   c. every usage document stores a *watermark*, the highest source offset folded into it per
      partition (``wm.<partition>``), in the same document as its counters: an event at or below
      it was applied before a crash or a rebalance and is skipped for that document.
4. Replayed documents re-send what they emitted last (``last_out``): the crash may have come
   before it was published.
5. Decide what each updated document emits (the tenant-day's ``metering.usage`` message, quota
   alerts) and its new state, which stores it (``last_out``; ``alerted.<key>`` records each alert
   sent). A flush that re-sends a document's ``last_out`` and also updates it keeps the re-sent
   messages in the new ``last_out``: they are not known to be published until it commits.
6. Write every new state as a redo-logged replace:

   a. journal the new states (the commit point);
   b. per collection, delete the old states, guarded by their version ids (``vid``, unique per
      written state), and insert the new ones;
   c. drop the journal.

   A crash after (a) is repaired before any document is read again (2): pending journals are
   re-applied (b is idempotent: a state already replaced is not deleted again, its re-insert is a
   duplicate key and is skipped). The version guard is a compare-and-set: if a document's state is
   not the one this process read (a second writer after a rebalance, a zombie consumer), its old
   state is not deleted, the insert of ours fails on the duplicate ``_id``, and the batch fails as
   transient (``UsageConflict``) and is re-run cold, from freshly read watermarks.
7. The database holds it: the cache takes the new states and the partitions move on. The caller
   publishes the result's messages; only then does the handler return and the batch's offsets get
   committed. If the process dies in between, the replay finds the events at or below the
   watermarks and re-publishes the stored ``last_out`` byte for byte (4): the same event ids and
   values, never a different alert and never a lost one. Consumers dedupe on ``event_id``.

Any failure makes the batch's partitions cold, so the retry reads back whatever was or was not
written. Counters are integers (nano-dollars, microseconds; see ``fold``), summed in Python, so
totals do not depend on how a stream was cut into flushes.

Assumptions: one source topic per sink (watermarks are keyed by partition); its offsets never restart
(recreating the usage topic requires dropping the watermarks); de-duplication across partitions is
not attempted (the key is the tenant).

Size: the steps above are one exactly-once protocol, kept in one module until it is split into a
pure core and its MongoDB adapter (issue 15).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase

from modelyard_core.bus import Delivery, TransientError
from modelyard_events import UsageRecorded

from .ledger import (  # noqa: F401 - re-exported: where the collections have always been imported from
    AGENTS, COLLECTIONS, DAILY, MONTHLY, TENANT_DAILY, AlertPolicy, CachedDoc, DocKey, FlushResult, Item, Ledger,
    PartitionKey, PartitionState, Pending, doc_keys, next_state, replacement,
)
from .mongo import JOURNAL, SEEN, WRITE_CHUNK, MongoUsageStore  # noqa: F401 - re-exported, as above
from .ports import Replacement, UsageStore

log = logging.getLogger(__name__)


class UsageConflict(TransientError):
    """A usage document changed under this process; the batch is re-run from fresh reads."""


class UsageSink:
    def __init__(self, store: UsageStore | AsyncDatabase, *, dedup_retention_days: int = 7, dedup_window: int = 100_000,
                 doc_cache_size: int = 50_000, prune_interval_s: float = 600.0,
                 alert_policy: AlertPolicy | None = None, write_chunk: int = WRITE_CHUNK) -> None:
        """``store`` is the storage port; a MongoDB database is wrapped in ``MongoUsageStore``
        (``dedup_retention_days`` and ``write_chunk`` are that adapter's)."""
        if isinstance(store, AsyncDatabase):
            store = MongoUsageStore(store, write_chunk=write_chunk, retention=timedelta(days=dedup_retention_days))
        self.store = store
        self.ledger = Ledger(dedup_window=dedup_window, doc_cache_size=doc_cache_size)
        self.prune_interval_s = prune_interval_s
        self.alert_policy = alert_policy
        self._last_prune = float("-inf")

    async def ensure_indexes(self) -> None:
        await self.store.ensure_indexes()

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
                self.ledger.forget(key)
            raise

    async def _apply(self, by_partition: dict[PartitionKey, list[tuple[UsageRecorded, int]]]) -> FlushResult:
        ledger, result = self.ledger, FlushResult()

        # 1. Partitions: warm ones go on; cold ones forget their documents and read their recent ids back.
        states = await self._partitions({pkey: events[0][1] for pkey, events in by_partition.items()})

        # 2. Documents: read the ones not cached (an interrupted flush is finished first).
        items = {pkey: ledger.items(events) for pkey, events in by_partition.items()}
        result.docs_read = await self._load(items)

        # 3. Per partition: drop duplicates, record the new ids before the counters, fold the fresh events.
        pending: dict[DocKey, Pending] = {}
        replayed_docs: dict[DocKey, CachedDoc] = {}
        moved: dict[PartitionKey, tuple[PartitionState, int, list[tuple[str, int]]]] = {}
        for pkey, events in by_partition.items():
            topic, partition = pkey
            fresh, new_ids = ledger.dedupe(states[pkey], items[pkey], result)
            await self._record_seen(topic, partition, new_ids)
            ledger.fold(partition, fresh, pending, replayed_docs, result)
            result.max_offsets[partition] = events[-1][1]
            moved[pkey] = (states[pkey], events[-1][1] + 1, new_ids)

        # 4. Replayed documents: re-send what they emitted last; it may never have been published.
        resent = ledger.resend(replayed_docs, result)

        # 5. Each updated document's outputs and new state.
        for (coll, _id), p in pending.items():
            ledger.decide(coll, _id, p, resent.get(id(p.doc), []), self.alert_policy)

        # 6. Write the new states: journal, guarded replace, journal done.
        await self._write(pending)
        result.documents = len(pending)

        # 7. The database holds it: update the cache, collect the outputs, move the partitions on.
        resent_docs = [d for d in replayed_docs.values() if id(d) in resent]
        ledger.committed(pending, resent_docs, moved, result)
        return result

    async def _partitions(self, firsts: dict[PartitionKey, int]) -> dict[PartitionKey, PartitionState]:
        states, cold = self.ledger.continue_or_restart(firsts)
        for topic in sorted({t for t, _ in cold}):
            partitions = [p for t, p in cold if t == topic]
            recent = await self.store.recent_ids(topic, partitions, self.ledger.dedup_window)
            for partition in partitions:
                ids = recent.get(partition, {})
                self.ledger.remember(states[(topic, partition)], ids)
                log.info("partition %s[%d] cold at offset %d: %d recent event ids loaded", topic, partition,
                         firsts[(topic, partition)], len(ids))
        return states

    async def _load(self, items: dict[PartitionKey, list[Item]]) -> int:
        touched = self.ledger.touched(items)
        if touched.missing:
            # An interrupted flush must be finished before its documents are read.
            await self.recover()
        found = {coll: await self.store.read(coll, ids) for coll, ids in touched.missing.items()}
        self.ledger.cache(touched, found)
        return sum(len(ids) for ids in touched.missing.values())

    async def _record_seen(self, topic: str, partition: int, new: list[tuple[str, int]]) -> None:
        if new:
            await self.store.record_ids(topic, partition, new)

    async def _write(self, pending: dict[DocKey, Pending]) -> None:
        entries = [replacement(coll, p) for (coll, _), p in pending.items()]
        if not entries:
            return
        # The commit point: from here on the flush is finished, by this process or by recovery.
        journal = await self.store.begin(entries)
        conflicts = await self._replace(entries, recovering=False)
        await self.store.end(journal)
        if conflicts:
            raise UsageConflict(f"{len(conflicts)} usage documents changed under this process, e.g. {conflicts[0]}")

    async def _replace(self, entries: list[Replacement], *, recovering: bool) -> list[str]:
        """Replace old states by new ones, guarded by version ids; return the ids that conflicted."""
        by_coll: dict[str, list[Replacement]] = defaultdict(list)
        for entry in entries:
            by_coll[entry["c"]].append(entry)
        # Collections are independent: replace them concurrently (the server overlaps the scans). When
        # one fails, the others still run to their end: a command cancelled in flight can still run on
        # the server after the retry has recovered the flush, and on FerretDB/SQLite a late delete that
        # matched old states then removes the new ones, found by _id.
        found = await asyncio.gather(*(self.store.replace(coll, items) for coll, items in by_coll.items()),
                                     return_exceptions=True)
        for outcome in found:
            if isinstance(outcome, BaseException):
                raise outcome  # the journal finishes what failed
        conflicts = [_id for ids in found for _id in ids]
        if conflicts and recovering:
            return []  # already replaced (by the interrupted flush itself) or superseded since
        return conflicts

    async def recover(self) -> int:
        """Finish flushes that were interrupted between their journal and its end."""
        journals = await self.store.journals()
        for journal_id, entries in journals:
            await self._replace(entries, recovering=True)
            await self.store.end([journal_id])
        if journals:
            log.warning("finished %d interrupted flush(es) from the journal", len(journals))
        return len(journals)

    # -- housekeeping -------------------------------------------------------------------------------

    async def prune_seen(self) -> int:
        """Forget id lists past their retention, or older than every partition's in-memory window."""
        below = {}
        for pkey, state in self.ledger.partitions.items():
            oldest = state.seen.oldest_offset()
            if oldest is not None and len(state.seen) >= self.ledger.dedup_window:  # full: older lists are never read again
                below[pkey] = oldest
        deleted = await self.store.prune_ids(below)
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
