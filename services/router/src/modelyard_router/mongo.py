"""The MongoDB (and FerretDB) adapters of the router: its admission log (``ports.AdmissionLog``) and the
published model files (``published.ModelFiles``).

Entries are inserts under a unique ``_id``: on FerretDB/SQLite an insert is also the one write that
does not scan its collection, and a duplicate key is the version check.
"""

from __future__ import annotations

import time

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError


class MongoAdmissionLog:
    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        """Indexes of the two reads (one document's log; a day's logs). On MongoDB; FerretDB/SQLite scans anyway."""
        await self.collection.create_index([("doc", 1), ("seq", 1)])
        await self.collection.create_index([("topic", 1), ("day", 1)])

    async def entries(self, doc: str) -> list[dict]:
        return [e async for e in self.collection.find({"doc": doc})]

    async def day_entries(self, topic: str, day: str) -> list[dict]:
        return [e async for e in self.collection.find({"topic": topic, "day": day})]

    async def append(self, entry: dict) -> bool:
        try:
            await self.collection.insert_one(entry)
        except DuplicateKeyError:
            return False
        return True

    async def delete_before(self, doc: str, seq: int) -> None:
        await self.collection.delete_many({"doc": doc, "seq": {"$lt": seq}})

    async def delete_days_before(self, day: str) -> int:
        return (await self.collection.delete_many({"day": {"$lt": day}})).deleted_count


class MongoModelFiles:
    """Published router model files (``published.ModelFiles``), compressed, under their digest."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection

    async def put(self, model_id: str, body: bytes, label: str, *, source: str = "operator", keep_learned: int = 3) -> None:
        try:
            await self.collection.insert_one({"_id": model_id, "body": body, "label": label, "bytes": len(body),
                                              "source": source, "stored_at": time.time()})
        except DuplicateKeyError:
            pass  # the same file, published before: its digest says so
        if source == "learner":  # the learner publishes a snapshot every few seconds: keep the newest few
            old = [d["_id"] async for d in self.collection.find({"source": "learner"}, {"_id": 1}).sort("stored_at", -1)
                   .skip(keep_learned)]
            if old:
                await self.collection.delete_many({"_id": {"$in": old}})

    async def get(self, model_id: str) -> bytes | None:
        doc = await self.collection.find_one({"_id": model_id})
        return bytes(doc["body"]) if doc is not None else None


class MongoCheckpoints:
    """The router learner's checkpoint (``learner.Checkpoints``): one document, replaced under a version guard."""

    def __init__(self, collection: AsyncCollection, key: str = "learner") -> None:
        self.collection = collection
        self.key = key

    async def load(self) -> tuple[int, bytes] | None:
        doc = await self.collection.find_one({"_id": self.key})
        return (int(doc["version"]), bytes(doc["body"])) if doc is not None else None

    async def save(self, body: bytes, version: int, expected: int | None, meta: dict) -> bool:
        doc = {"_id": self.key, "version": version, "body": body, "saved_at": time.time(),
               "meta": {"applied": meta.get("applied"), "base": meta.get("base"),
                        "watermarks": [{"source": k, "offset": v} for k, v in sorted((meta.get("watermarks") or {}).items())]}}
        if expected is None:
            try:
                await self.collection.insert_one(doc)
            except DuplicateKeyError:
                return False
            return True
        done = await self.collection.replace_one({"_id": self.key, "version": expected}, doc)
        return done.matched_count == 1
