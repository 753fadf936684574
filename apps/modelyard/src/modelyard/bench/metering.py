"""`modelyard bench metering`: usage events through the running metering service, exact and timed.

Publishes N synthetic usage events (50 tenants by default) to the usage topic of a running stack,
waits until the metering service has folded all of them into the usage documents, checks that every
tenant's calls, queries, tokens and cost moved by exactly what was published (in the per-model,
per-day and per-month documents), and times a naive sink (one ``update_one`` ``$inc`` per event per
document, the same documents) on a smaller sample against the same database server.

The bench tenants have fixed names, so repeated runs on one day reuse the same documents (FerretDB's
write cost grows with collection size: repeated runs must not inflate it); figures are the documents'
change during the run, not their absolute values.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from modelyard_core.kafka_clients import make_producer
from modelyard_core.store import database, make_mongo
from modelyard_events import UsageRecorded
from modelyard_harness.usage import expected_totals, stored_totals, synthetic_usage
from modelyard_metering.fold import Fold
from modelyard_metering.settings import MeteringSettings
from modelyard_metering.sink import doc_keys
from modelyard_usage import COLLECTIONS, DAILY, MONTHLY, TENANT_DAILY

#: (phase, done, total): "publish", "fold" or "naive".
Progress = Callable[[str, int, int], None]


@dataclass
class BenchResult:
    events: int
    tenants: int
    publish_s: float
    fold_s: float
    folded_per_s: float
    naive_events: int
    naive_s: float
    naive_per_s: float
    exact: bool
    mismatches: list[str]
    documents: dict[str, int]

    @property
    def speedup(self) -> float:
        return self.folded_per_s / self.naive_per_s if self.naive_per_s else 0.0

    def summary(self) -> dict:
        return {"events": self.events, "folded_per_s": round(self.folded_per_s), "naive_per_s": round(self.naive_per_s, 1),
                "exact": self.exact, "speedup": round(self.speedup, 1), "tenants": self.tenants}


def bench_tenants(n: int) -> list[str]:
    return [f"bench-{i:03d}" for i in range(n)]


def _minus(after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    zero = dict(calls=0, queries=0, tokens=0, cost_nusd=0)
    return {t: {k: v - before.get(t, zero)[k] for k, v in row.items()} for t, row in after.items()}


async def _publish(settings: MeteringSettings, payloads: list[tuple[bytes, bytes]], progress: Progress | None) -> None:
    """One idempotent producer, batched: the upstream side should not be what is measured."""
    topic = settings.topics.name("usage")
    producer = make_producer(settings.kafka, enable_idempotence=True,
                             linger_ms=50, max_batch_size=1024 * 1024, max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        futures = []
        for i, (key, value) in enumerate(payloads, 1):
            futures.append(await producer.send(topic, value=value, key=key))
            if progress and i % 5_000 == 0:
                progress("publish", i, len(payloads))
        await asyncio.gather(*futures)
        if progress:
            progress("publish", len(payloads), len(payloads))
    finally:
        await producer.stop()


async def naive_sink(db: AsyncDatabase, events: list[UsageRecorded], progress: Progress | None = None) -> float:
    """The path the metering sink replaces: one ``$inc`` per event per document. Returns seconds."""
    start = time.perf_counter()
    for i, e in enumerate(events, 1):
        for coll, _id, ident in doc_keys(e):
            fold = Fold(histogram=coll in (DAILY, TENANT_DAILY))
            fold.add(e, 0, i)
            inc = dict(fold.inc) | {f"latency_le.{b}": n for b, n in fold.hist.items()}
            await db[coll].update_one({"_id": _id}, {"$inc": inc, "$set": ident}, upsert=True)
        if progress and i % 100 == 0:
            progress("naive", i, len(events))
    return time.perf_counter() - start


async def run_bench(settings: MeteringSettings, *, events: int = 100_000, tenants: int = 50, naive_events: int = 2_000,
                    timeout_s: float = 600.0, seed: int | None = None, progress: Progress | None = None) -> BenchResult:
    names = bench_tenants(tenants)
    stream = synthetic_usage(events, names, seed=seed if seed is not None else int(time.time()))
    expected = expected_totals(stream)
    mongo = make_mongo(settings.mongo, app_name="modelyard-bench")
    db = database(mongo, settings.mongo)
    try:
        before = {c: await stored_totals(db, names, c) for c in (DAILY, TENANT_DAILY, MONTHLY)}
        calls_before = sum(t["calls"] for t in before[TENANT_DAILY].values())

        payloads = [(e.tenant_id.encode(), e.model_dump_json().encode()) for e in stream]  # before the clock starts
        start = time.perf_counter()
        await _publish(settings, payloads, progress)
        published = time.perf_counter()

        deadline = time.monotonic() + timeout_s
        while True:
            folded = sum(t["calls"] for t in (await stored_totals(db, names, TENANT_DAILY)).values()) - calls_before
            if progress:
                progress("fold", min(folded, events), events)
            if folded >= events or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        done = time.perf_counter()

        mismatches = []
        for coll in (DAILY, TENANT_DAILY, MONTHLY):
            changed = _minus(await stored_totals(db, names, coll), before[coll])
            for tenant, want in expected.items():
                if changed.get(tenant) != want:
                    mismatches.append(f"{coll} {tenant}: expected {want}, got {changed.get(tenant)}")
        documents = {c: await db[c].count_documents({}) for c in COLLECTIONS}

        scratch_name = f"{settings.mongo.database}_naive_{uuid.uuid4().hex[:8]}"
        scratch = mongo[scratch_name]
        try:
            sample = synthetic_usage(naive_events, names, seed=1)
            naive_s = await naive_sink(scratch, sample, progress)
        finally:
            await mongo.drop_database(scratch_name)
    finally:
        await mongo.close()

    fold_s = done - start
    return BenchResult(
        events=events, tenants=tenants, publish_s=published - start, fold_s=fold_s,
        folded_per_s=events / fold_s if folded >= events else folded / fold_s,
        naive_events=naive_events, naive_s=naive_s, naive_per_s=naive_events / naive_s if naive_s else 0.0,
        exact=folded == events and not mismatches, mismatches=mismatches[:10], documents=documents,
    )
