"""The MongoDB (and FerretDB) adapter of the router's admission log (``ports.AdmissionLog``).

Entries are inserts under a unique ``_id``: on FerretDB/SQLite an insert is also the one write that
does not scan its collection, and a duplicate key is the version check.
"""

from __future__ import annotations

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
