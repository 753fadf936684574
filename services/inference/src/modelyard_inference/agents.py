"""The agents a worker answers for: their system prompts, from the compacted ``tenants.agents`` view."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from modelyard_core.views import CompactedTopicView
from modelyard_events import AgentSnapshot, QueryRouted

log = logging.getLogger(__name__)


def agent_key(tenant_id: str, agent_id: str) -> str:
    """Key of an agent on the compacted ``tenants.agents`` topic."""
    return f"{tenant_id}/{agent_id}"


@dataclass
class Agents:
    """The agents view, and one shared catch-up for queries naming an agent the view does not know yet."""

    view: CompactedTopicView[AgentSnapshot] | None
    sync_timeout_s: float
    _sync: asyncio.Future | None = field(default=None, init=False, repr=False)
    _synced_at: datetime = field(default=datetime.min.replace(tzinfo=UTC), init=False, repr=False)

    def of(self, r: QueryRouted) -> AgentSnapshot | None:
        if not r.request.agent_id or self.view is None:
            return None
        return self.view.get(agent_key(r.tenant_id, r.request.agent_id))

    async def catch_up(self, r: QueryRouted) -> None:
        """An agent created a moment before its first query may not be in the view yet: let the view catch up.

        Queries waiting at the same time share one catch-up, and one that started after the query was
        routed already covers it: queries naming an agent that does not exist cost at most one catch-up
        at a time, never one each.
        """
        if (self.view is None or not r.request.agent_id or self.sync_timeout_s <= 0
                or self.of(r) is not None or self._synced_at >= r.time):
            return
        if self._sync is None or self._sync.done():
            self._sync = asyncio.ensure_future(self._catch_up())
        await asyncio.shield(self._sync)

    async def _catch_up(self) -> None:
        started = datetime.now(UTC)
        assert self.view is not None
        try:
            if await self.view.sync(timeout_s=self.sync_timeout_s):
                self._synced_at = started
        except Exception as exc:  # noqa: BLE001 - answer without the system prompt rather than not at all
            log.warning("agents view could not catch up: %r", exc)
