"""What the router's admission needs from storage: the ``AdmissionLog`` port.

Admission state is kept as logs of entries, one log per router process and day (see
``admission.py``). A store keeps the entries and makes one promise: an entry is appended only if no
entry with its ``_id`` (document key and sequence number) exists, which is how every write is
version-checked. ``mongo.MongoAdmissionLog`` is the MongoDB/FerretDB adapter; unit tests use an
in-memory fake.
"""

from __future__ import annotations

from typing import Protocol


class AdmissionLog(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def entries(self, doc: str) -> list[dict]:
        """Every stored entry of one owner document's log (any order)."""
        ...

    async def day_entries(self, topic: str, day: str) -> list[dict]:
        """Every stored entry of every owner document of ``topic`` and ``day``."""
        ...

    async def append(self, entry: dict) -> bool:
        """Store ``entry`` unless an entry with its ``_id`` exists; False in that case (a conflict)."""
        ...

    async def delete_before(self, doc: str, seq: int) -> None:
        """Delete the entries of ``doc``'s log before sequence number ``seq`` (housekeeping)."""
        ...

    async def delete_days_before(self, day: str) -> int:
        """Delete every entry of days before ``day``; returns how many."""
        ...
