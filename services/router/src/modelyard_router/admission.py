"""Exact daily API-call quotas per tenant.

Queries are keyed by tenant, so exactly one router instance (the owner of the tenant's partition) counts
a tenant at a time, in offset order; no distributed lock is needed. The count lives in MongoDB, one
document per tenant and day, written *before* the batch's decisions are published and its offsets
committed. Each document remembers the last offset it counted and the first offset it rejected: when a
batch is redelivered after a crash, records at or below the counted offset are not counted again and
get the same decision as the first time (admitted before the first rejection, rejected from it on), so
a restart or a partition reassignment neither loses nor double-counts an admission.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection


@dataclass(slots=True)
class Counter:
    key: str
    tenant_id: str
    day: str
    count: int = 0
    partition: int | None = None
    last_offset: int = -1
    first_rejected_offset: int | None = None
    dirty: bool = False

    def admit(self, partition: int, offset: int, limit: int) -> bool:
        if partition == self.partition and offset <= self.last_offset:
            # Redelivered: decided before; the decision is a function of the stored state.
            return self.first_rejected_offset is None or offset < self.first_rejected_offset
        if partition != self.partition:
            # First record for this tenant-day, or the topic was repartitioned: offsets start anew.
            self.partition, self.last_offset, self.first_rejected_offset = partition, -1, None
        self.last_offset = offset
        self.dirty = True
        if self.count < limit:
            if self.first_rejected_offset is not None:
                # The limit grew (tier upgrade): admissions resume; the rejection marker no longer applies.
                self.first_rejected_offset = None
            self.count += 1
            return True
        if self.first_rejected_offset is None:
            self.first_rejected_offset = offset
        return False


class AdmissionStore:
    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    @staticmethod
    def key(tenant_id: str, day: str) -> str:
        return f"{tenant_id}|{day}"

    async def load(self, keys: set[tuple[str, str]]) -> dict[str, Counter]:
        ids = [self.key(t, d) for t, d in keys]
        found = {doc["_id"]: doc async for doc in self.collection.find({"_id": {"$in": ids}})}
        counters: dict[str, Counter] = {}
        for tenant_id, day in keys:
            k = self.key(tenant_id, day)
            doc = found.get(k)
            c = Counter(k, tenant_id, day)
            if doc:
                c.count = doc["count"]
                c.partition = doc.get("partition")
                c.last_offset = doc.get("last_offset", -1)
                c.first_rejected_offset = doc.get("first_rejected_offset")
            counters[k] = c
        return counters

    async def save(self, counters: dict[str, Counter]) -> None:
        ops = [
            UpdateOne(
                {"_id": c.key},
                {"$set": {
                    "tenant_id": c.tenant_id, "day": c.day, "count": c.count, "partition": c.partition,
                    "last_offset": c.last_offset, "first_rejected_offset": c.first_rejected_offset,
                }},
                upsert=True,
            )
            for c in counters.values()
            if c.dirty
        ]
        if ops:
            await self.collection.bulk_write(ops, ordered=False)

    async def used_today(self, tenant_id: str, day: str) -> int:
        doc = await self.collection.find_one({"_id": self.key(tenant_id, day)})
        return doc["count"] if doc else 0

