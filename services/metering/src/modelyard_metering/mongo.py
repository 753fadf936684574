"""The MongoDB (and FerretDB) adapter of the metering store (``ports.UsageStore``).

Why replace, not ``$inc``: FerretDB 1.24 on SQLite (the no-Docker backend of dev and CI) has no
filter pushdown for writes: every ``update``/``delete`` scans and decodes the whole collection, so
one ``$inc`` per document costs O(collection) and a flush O(documents x collection) (measured: 30 ms
per update at 150 documents). Inserts and ``find_one({_id})`` are O(1). A flush's replacement costs
one ``delete`` (a scan) and a few ``insert`` commands per collection. On MongoDB both are cheap.
Readers may, for the milliseconds between the delete and the insert of a collection, miss a document
that is being replaced (never double count).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from .ledger import COLLECTIONS, PartitionKey
from .ports import Replacement

SEEN = "usage_seen"  # event ids of each flush, for de-duplication
JOURNAL = "usage_journal"  # new states of a flush being written (empty between flushes)

#: Documents per insert command.
WRITE_CHUNK = 500
#: New document states per journal document (a few KB each).
JOURNAL_CHUNK = 2_000


class MongoUsageStore:
    def __init__(self, db: AsyncDatabase, *, write_chunk: int = WRITE_CHUNK, retention: timedelta = timedelta(days=7)) -> None:
        self.db = db
        self.write_chunk = write_chunk
        self.retention = retention

    async def ensure_indexes(self) -> None:
        await self.db[SEEN].create_index([("topic", 1), ("partition", 1), ("last_offset", DESCENDING)])
        await self.db[SEEN].create_index([("expires_at", 1)])
        for name in COLLECTIONS:
            await self.db[name].create_index([("tenant_id", 1)])

    async def recent_ids(self, topic: str, partitions: list[int], limit: int) -> dict[int, dict[str, int]]:
        # One query for all partitions (on FerretDB every filtered read scans the collection).
        loaded: dict[int, int] = dict.fromkeys(partitions, 0)
        recent: dict[int, dict[str, int]] = {p: {} for p in partitions}
        cursor = self.db[SEEN].find({"topic": topic, "partition": {"$in": sorted(partitions)}},
                                    sort=[("last_offset", DESCENDING)])
        async for doc in cursor:
            partition = doc["partition"]
            if loaded[partition] >= limit:
                continue
            seen, first = recent[partition], doc["first_offset"]
            ids = json.loads(doc["ids"])
            for event_id, delta in zip(ids, json.loads(doc["deltas"]), strict=True):
                seen.setdefault(event_id, first + delta)
            loaded[partition] += len(ids)
        return recent

    async def record_ids(self, topic: str, partition: int, ids: list[tuple[str, int]]) -> None:
        # An insert (O(1) on FerretDB) under a deterministic id: a retried flush finds its list there.
        first = ids[0][1]
        try:
            await self.db[SEEN].insert_one({
                "_id": f"{topic}|{partition}|{first}-{ids[-1][1]}|{ids[0][0]}",
                "topic": topic, "partition": partition, "first_offset": first, "last_offset": ids[-1][1],
                # Compact: JSON text of the ids and of their offsets' distances from the first
                # (one string each: cheap for FerretDB to store and to scan past).
                "ids": json.dumps([i for i, _ in ids]), "deltas": json.dumps([o - first for _, o in ids]),
                "expires_at": datetime.now(UTC) + self.retention,
            })
        except DuplicateKeyError:
            pass

    async def read(self, collection: str, ids: list[str]) -> dict[str, dict]:
        return {doc["_id"]: doc async for doc in self.db[collection].find({"_id": {"$in": ids}})}

    async def begin(self, replacements: list[Replacement]) -> list[str]:
        # Several journal documents for a large flush: each stays far below the 16 MB limit, and each
        # is complete on its own, since every document is replaced independently.
        journal = [{"_id": uuid.uuid4().hex, "at": datetime.now(UTC),
                    "entries": json.dumps(replacements[i:i + JOURNAL_CHUNK])}
                   for i in range(0, len(replacements), JOURNAL_CHUNK)]
        await self.db[JOURNAL].insert_many(journal)
        return [j["_id"] for j in journal]

    async def replace(self, collection: str, replacements: list[Replacement]) -> list[str]:
        old = [e for e in replacements if e["exists"]]
        if old:
            # Deletes only states that are still the ones the new states were computed from.
            await self.db.command({"delete": collection, "deletes": [{"q": {
                "_id": {"$in": [e["state"]["_id"] for e in old]},
                "vid": {"$in": sorted({e["prev"] for e in old}, key=lambda v: v or "")},
            }, "limit": 0}]})
        conflicts: list[str] = []
        states = [e["state"] for e in replacements]
        for i in range(0, len(states), self.write_chunk):
            chunk = states[i:i + self.write_chunk]
            reply = await self.db.command({"insert": collection, "documents": chunk, "ordered": False})
            for err in reply.get("writeErrors") or []:
                if err.get("code") != 11000:
                    raise RuntimeError(f"insert into {collection} failed: {err}")
                conflicts.append(chunk[err["index"]]["_id"])
        return conflicts

    async def end(self, journal_ids: list[str]) -> None:
        await self.db[JOURNAL].delete_many({"_id": {"$in": journal_ids}})

    async def journals(self) -> list[tuple[str, list[Replacement]]]:
        return [(j["_id"], json.loads(j["entries"])) async for j in self.db[JOURNAL].find({})]

    async def prune_ids(self, below: Mapping[PartitionKey, int]) -> int:
        deleted = (await self.db[SEEN].delete_many({"expires_at": {"$lt": datetime.now(UTC)}})).deleted_count
        for (topic, partition), oldest in below.items():
            res = await self.db[SEEN].delete_many({"topic": topic, "partition": partition, "last_offset": {"$lt": oldest}})
            deleted += res.deleted_count
        return deleted
