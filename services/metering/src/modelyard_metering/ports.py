"""What the metering core needs from storage: the ``UsageStore`` port.

The sink (``sink.py``) decides; a store only keeps: the ids each flush counted (for de-duplication
after a restart), the usage documents, and the redo journal that makes a flush's many document
replacements all-or-nothing on a database without multi-document transactions. ``mongo.MongoUsageStore``
is the MongoDB/FerretDB adapter; unit tests use an in-memory fake with the same guarantees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .ledger import PartitionKey

#: One document's replacement, as the journal keeps it: ``{"c": collection, "prev": version id the
#: stored state must still have (None when there is none), "exists": whether there is a stored
#: state, "state": the new document}``.
Replacement = dict[str, Any]


class UsageStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def recent_ids(self, topic: str, partitions: list[int], limit: int) -> dict[int, dict[str, int]]:
        """Per partition, the event ids of its newest recorded flushes (about ``limit`` of them, the
        newest offset of each id)."""
        ...

    async def record_ids(self, topic: str, partition: int, ids: list[tuple[str, int]]) -> None:
        """Record the ids (with their offsets, in offset order) a flush is about to count. Idempotent:
        recording the same list again (a retried flush) changes nothing."""
        ...

    async def read(self, collection: str, ids: list[str]) -> dict[str, dict]:
        """The stored documents among ``ids``, by id."""
        ...

    async def begin(self, replacements: list[Replacement]) -> list[str]:
        """Journal a flush's replacements (the commit point); returns the journal's ids."""
        ...

    async def replace(self, collection: str, replacements: list[Replacement]) -> list[str]:
        """Apply replacements of one collection: delete each old state only if its version id is still
        ``prev``, insert each new state. Re-applying is harmless. Returns the ids of the documents whose
        new state could not be inserted because another state is stored under their id (a conflict)."""
        ...

    async def end(self, journal_ids: list[str]) -> None:
        """Drop journal entries whose replacements are applied."""
        ...

    async def journals(self) -> list[tuple[str, list[Replacement]]]:
        """Journal entries of flushes that were interrupted before ``end``."""
        ...

    async def prune_ids(self, below: Mapping[PartitionKey, int]) -> int:
        """Delete recorded id lists past their retention, and those of a partition ending below the
        given offset; returns how many were deleted."""
        ...
