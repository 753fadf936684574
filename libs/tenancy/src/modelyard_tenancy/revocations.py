"""Revoked API keys, known to every service that accepts JWTs without asking the database.

The tenant service publishes a ``KeyRevoked`` event on the compacted ``tenants.revocations`` topic
when a key is revoked or its tenant deleted (``modelyard_events.security``). ``RevocationList`` reads
that topic as a view (every partition, from the beginning, following it), so checking a token is a
set lookup: a revoked key's JWTs are refused here as soon as the event arrives, typically within a
fraction of a second, instead of when they expire.

The list only grows by one small record per revoked key (compaction keeps one per key id).
"""

from __future__ import annotations

from typing import Protocol

from modelyard_core.settings import Settings
from modelyard_core.views import CompactedTopicView
from modelyard_events import KeyRevoked


class Revocations(Protocol):
    def is_revoked(self, key_id: str) -> bool: ...


class RevocationList:
    """The revoked key ids of the deployment, from ``tenants.revocations`` (start before serving)."""

    def __init__(self, settings: Settings, *, service: str) -> None:
        self.view = CompactedTopicView(settings, settings.topics.name("revocations"), KeyRevoked,
                                       name=f"{service}-revocations")

    def is_revoked(self, key_id: str) -> bool:
        return key_id in self.view.items

    def __len__(self) -> int:
        return len(self.view.items)

    async def start(self) -> None:
        await self.view.start()

    async def stop(self) -> None:
        await self.view.stop()


class NoRevocations:
    """For a process that runs without the bus (tests of pure HTTP behaviour): nothing is revoked."""

    def is_revoked(self, key_id: str) -> bool:
        return False
