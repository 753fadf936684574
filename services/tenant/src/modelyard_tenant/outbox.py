"""Snapshots on the compacted topics, published from the database's current state.

Before a change, the writer records *which* tenant or agent changed (an outbox document). After the
change it publishes that object's current state (a snapshot, or a tombstone if it is gone) and
removes the record. A revoked or deleted API key is published the same way, as a ``KeyRevoked`` on
the compacted revocation topic (nothing is published for a key that turns out to be live). A change
that others are told about as an event (``TenantChanged`` on ``tenants.events``: a tier change, a key
created or revoked, an export, a deletion) is recorded the same way, with the event itself in the
record, and published as recorded, in the order recorded. If
Kafka is down the record stays, and the sweeper publishes it later; since a
snapshot is always rebuilt from current state and consumers keep the latest version per key, a
publication repeated after a crash is harmless. Publications of one tenant happen under its lock,
so a stale snapshot can never be sent after a newer one or after a tombstone.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from modelyard_core.bus import Bus
from modelyard_core.settings import Topics
from modelyard_events import (
    TIER_LIMITS,
    AgentSnapshot,
    KeyRevoked,
    RevocationReason,
    RoutingPolicy,
    TenantBudget,
    TenantChanged,
    TenantEndpoint,
    TenantSnapshot,
    Tier,
)

from .store import READY, TenantData

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ref:
    kind: str  # "tenant", "agent", "key" or "event"
    ref_id: str

    @property
    def outbox_id(self) -> str:
        return f"{self.kind}:{self.ref_id}"


def tenant_ref(tenant_id: str) -> Ref:
    return Ref("tenant", tenant_id)


def agent_ref(agent_id: str) -> Ref:
    return Ref("agent", agent_id)


def key_ref(key_id: str) -> Ref:
    return Ref("key", key_id)


def tenant_snapshot(doc: dict) -> TenantSnapshot:
    tier = Tier(doc["subscription_tier"])
    return TenantSnapshot(
        tenant_id=doc["tenant_id"],
        version=doc["version"],
        name=doc["organization_name"],
        tier=tier,
        industry=doc["industry"],
        status=doc["status"],
        limits=TIER_LIMITS[tier],
        policy=RoutingPolicy.model_validate(doc.get("policy") or {}),
        budget=TenantBudget.model_validate(doc.get("budget") or {}),
        endpoints=[TenantEndpoint.model_validate(e) for e in doc.get("model_endpoints") or []],
    )


def agent_snapshot(doc: dict) -> AgentSnapshot:
    return AgentSnapshot(
        tenant_id=doc["tenant_id"],
        agent_id=doc["_id"],
        name=doc["name"],
        agent_type=doc["agent_type"],
        system_prompt=doc.get("system_prompt", ""),
        use_model_router=doc.get("use_model_router", True),
    )


def agent_key(tenant_id: str, agent_id: str) -> str:
    return f"{tenant_id}/{agent_id}"


class SnapshotPublisher:
    def __init__(self, bus: Bus, topics: Topics, *, timeout_s: float) -> None:
        self.bus = bus
        self.tenant_topic = topics.name("tenant_snapshots")
        self.agent_topic = topics.name("tenant_agents")
        self.revocation_topic = topics.name("revocations")
        self.event_topic = topics.name("tenant_events")
        self.timeout_s = timeout_s

    async def record(self, data: TenantData, refs: list[Ref]) -> None:
        now = datetime.now(UTC)
        for ref in refs:
            await data.outbox.put(ref.outbox_id, {"kind": ref.kind, "ref_id": ref.ref_id, "recorded_at": now})

    async def record_event(self, data: TenantData, event: TenantChanged) -> None:
        """Record ``event`` for publication (call it just before the change it announces)."""
        ref = Ref("event", event.event_id)
        await data.outbox.put(ref.outbox_id, {"kind": ref.kind, "ref_id": ref.ref_id, "recorded_at": datetime.now(UTC),
                                              "event": event.model_dump(mode="json")})

    async def flush(self, data: TenantData, refs: list[Ref] | None = None) -> int:
        """Publish the current state of ``refs`` (default: everything pending for the tenant).

        Returns how many were published; a failure is logged and leaves the rest pending.
        """
        if refs is None:
            refs = [Ref(d["kind"], d["ref_id"]) for d in await data.outbox.find(sort=[("recorded_at", 1), ("_id", 1)])]
        done = 0
        try:
            async with asyncio.timeout(self.timeout_s):
                for ref in refs:
                    if not await self._publish(data, ref):
                        continue
                    await data.outbox.delete({"_id": ref.outbox_id})
                    done += 1
        except Exception as exc:  # noqa: BLE001 - the sweeper retries; the API call already succeeded
            log.warning("publishing snapshots of tenant %s failed, left for the sweeper: %r", data.tenant_id, exc)
        return done

    async def _publish(self, data: TenantData, ref: Ref) -> bool:
        tenant = await data.tenant.find_one({"_id": data.tenant_id})
        if tenant is not None and tenant.get("lifecycle") not in (READY, "deleting"):
            return False  # an import in progress: published when it completes
        live = tenant is not None and tenant.get("lifecycle") == READY
        if ref.kind == "key":
            await self._publish_revocation(data, ref.ref_id)
            return True
        if ref.kind == "event":
            recorded = await data.outbox.find_one({"_id": ref.outbox_id})
            if recorded is not None:
                await self.bus.publish_one(self.event_topic, TenantChanged.model_validate(recorded["event"]), key=data.tenant_id)
            return True
        if ref.kind == "tenant":
            if live:
                await self.bus.publish_one(self.tenant_topic, tenant_snapshot(tenant), key=data.tenant_id)
            else:
                await self.bus.tombstone(self.tenant_topic, data.tenant_id)
            return True
        agent = await data.agents.find_one({"_id": ref.ref_id}) if live else None
        key = agent_key(data.tenant_id, ref.ref_id)
        if agent is not None:
            await self.bus.publish_one(self.agent_topic, agent_snapshot(agent), key=key)
        else:
            await self.bus.tombstone(self.agent_topic, key)
        return True

    async def _publish_revocation(self, data: TenantData, key_id: str) -> None:
        key = await data.api_keys.find_one({"_id": key_id})
        if key is not None and key.get("revoked_at") is None:
            return  # the revocation never happened (a crash before it): nothing to tell
        revoked_at = key["revoked_at"] if key is not None else datetime.now(UTC)
        reason = RevocationReason.REVOKED if key is not None else RevocationReason.TENANT_DELETED
        event = KeyRevoked(tenant_id=data.tenant_id, key_id=key_id, revoked_at=revoked_at, reason=reason)
        await self.bus.publish_one(self.revocation_topic, event, key=key_id)
