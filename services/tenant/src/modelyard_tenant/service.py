"""Organisations and API keys: the tenant service's domain operations, free of HTTP.

Every write to a tenant runs under that tenant's lock (see ``locks``), records the snapshots it
will publish before it changes anything (see ``outbox``), and publishes them afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard_billing import tier_history_records
from modelyard_core.bus import Bus
from modelyard_core.secrets import SecretBox
from modelyard_events import Change, Industry, ModelClass, RoutingPolicy, TenantBudget, TenantChanged, TenantStatus, Tier
from modelyard_hooks import Endpoints
from modelyard_tenancy import NewKey, Principal, Role, new_api_key
from pymongo.asynchronous.database import AsyncDatabase

from .errors import ApiError, Busy, FeatureNotInTier, Forbidden, NotFound, field_error
from .locks import LockTimeout, TenantLocks
from .outbox import SnapshotPublisher, agent_ref, key_ref, tenant_ref
from .plans import (
    PRESETS,
    Excess,
    Feature,
    ResourceUsage,
    excesses,
    features_of,
    patched_policy,
    policy_for,
    smallest_tier_with,
)
from .schemas import TenantCreate, TenantPatch, TenantSettings
from .settings import TenantServiceSettings
from .store import DELETING, LOCKS, READY, Platform, TenantData

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Now, at BSON's millisecond precision, so a response equals what a later read returns."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_resource_id() -> str:
    return uuid.uuid4().hex


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _custom_models(tier: Tier, industry: str) -> bool:
    return bool(features_of(tier, Industry(industry))[Feature.CUSTOM_MODELS.value])


class DowngradeRefused(ApiError):
    status = 409
    code = "downgrade_exceeds_limits"


class TenantService:
    def __init__(self, db: AsyncDatabase, bus: Bus, settings: TenantServiceSettings) -> None:
        self.db = db
        self.settings = settings
        self.platform = Platform(db)
        self.locks = TenantLocks(db[LOCKS], lease_s=settings.lock_lease_s, wait_s=settings.lock_wait_s)
        self.events = SnapshotPublisher(bus, settings.topics, timeout_s=settings.publish_timeout_s)
        #: Seals what must be read back later: webhook secrets, tenants' model API keys.
        self.box = SecretBox.from_setting(settings.master_keys)
        self.webhooks = Endpoints(db, self.box)

    def data(self, tenant_id: str) -> TenantData:
        return TenantData(self.db, tenant_id, usage_collections=self.settings.usage_collections)

    @asynccontextmanager
    async def writing(self, tenant_id: str) -> AsyncIterator[TenantData]:
        """The tenant's collections, with the tenant locked for the duration."""
        try:
            async with self.locks.hold(tenant_id):
                yield self.data(tenant_id)
        except LockTimeout:
            raise Busy(f"tenant {tenant_id} is busy, retry") from None

    @staticmethod
    async def ready(data: TenantData) -> dict | None:
        doc = await data.tenant.find_one({"_id": data.tenant_id})
        return doc if doc is not None and doc.get("lifecycle") == READY else None

    async def get_tenant(self, tenant_id: str) -> dict | None:
        return await self.ready(self.data(tenant_id))

    async def require(self, data: TenantData) -> dict:
        doc = await self.ready(data)
        if doc is None:
            raise NotFound("no such tenant")
        return doc

    # -- organisations -----------------------------------------------------------------------------

    async def create_tenant(self, body: TenantCreate) -> tuple[dict, dict, NewKey]:
        tenant_id = new_resource_id()
        preset = PRESETS[body.industry]
        now = utcnow()
        doc = {
            "_id": tenant_id,
            "organization_name": body.organization_name,
            "admin_email": body.admin_email,
            "industry": body.industry.value,
            "subscription_tier": body.subscription_tier.value,
            "status": TenantStatus.ACTIVE.value,
            "settings": TenantSettings(compliance=list(preset.compliance)).model_dump(mode="json"),
            "branding": body.branding.model_dump(mode="json"),
            "policy": policy_for(preset.routing_preference).model_dump(mode="json"),
            "budget": TenantBudget().model_dump(mode="json"),
            "version": 1,
            "lifecycle": READY,
            "created_at": now,
            "updated_at": now,
            "tier_history": [{"tier": body.subscription_tier.value, "since": now}],
        }
        async with self.writing(tenant_id) as data:
            await self.events.record(data, [tenant_ref(tenant_id)])
            await data.tenant.insert(doc)
            key_doc, key = await self.insert_key(data, "initial administrator key", Role.TENANT_ADMIN)
            await self.events.flush(data)
        return {**doc, "tenant_id": tenant_id}, key_doc, key

    async def list_tenants(self, *, offset: int, limit: int, tier: Tier | None, status: TenantStatus | None) -> tuple[list[dict], int]:
        flt: dict[str, Any] = {}
        if tier is not None:
            flt["subscription_tier"] = tier.value
        if status is not None:
            flt["status"] = status.value
        return await self.platform.list_tenants(flt, skip=offset, limit=limit)

    async def update_tenant(self, tenant_id: str, patch: TenantPatch, principal: Principal) -> dict:
        changes = patch.model_dump(exclude_unset=True, mode="json")
        if "status" in changes and not principal.is_platform_admin:
            raise Forbidden("only the platform administrator changes a tenant's status")
        async with self.writing(tenant_id) as data:
            doc = await self.require(data)
            new = self._apply(doc, changes)
            if new["subscription_tier"] != doc["subscription_tier"]:
                over = await self.excesses_for(data, new)
                if over:
                    raise DowngradeRefused(
                        f"tier {new['subscription_tier']} is below the tenant's current usage",
                        tier=new["subscription_tier"],
                        exceeded=[e.as_dict() for e in over],
                    )
            new["version"] = doc["version"] + 1
            new["updated_at"] = utcnow()
            if new["subscription_tier"] != doc["subscription_tier"]:
                new["tier_history"] = [*tier_history_records(doc), {"tier": new["subscription_tier"], "since": new["updated_at"]}]
            fields = {k: v for k, v in new.items() if k not in ("_id", "tenant_id")}
            await self.events.record(data, [tenant_ref(tenant_id)])
            if new["subscription_tier"] != doc["subscription_tier"]:
                await self.events.record_event(data, TenantChanged(
                    tenant_id=tenant_id, change=Change.TIER_CHANGED, version=new["version"],
                    from_tier=doc["subscription_tier"], to_tier=new["subscription_tier"]))
            await data.tenant.update({"_id": tenant_id}, {"$set": fields})
            await self.events.flush(data)
        return new

    def _apply(self, doc: dict, changes: dict) -> dict:
        new = dict(doc)
        for field in ("organization_name", "admin_email", "subscription_tier", "status"):
            if field in changes:
                new[field] = changes[field]
        if "settings" in changes:
            new["settings"] = TenantSettings.model_validate({**doc["settings"], **changes["settings"]}).model_dump(mode="json")
        if "branding" in changes:
            new["branding"] = {**doc["branding"], **changes["branding"]}
        if "budget" in changes:
            new["budget"] = changes["budget"]
        if "policy" in changes:
            policy = RoutingPolicy.model_validate(patched_policy(doc["policy"], changes["policy"]))
            order = list(ModelClass)
            if policy.min_class and policy.max_class and order.index(policy.min_class) > order.index(policy.max_class):
                raise field_error("policy.min_class", "min_class is above max_class")
            new["policy"] = policy.model_dump(mode="json")
        tier = Tier(new["subscription_tier"])
        # (A tier change that drops custom models while they are in use is refused as a downgrade.)
        if "policy" in changes and new["policy"].get("class_models") and not _custom_models(tier, doc["industry"]):
            raise FeatureNotInTier(
                "class_models (custom models) needs a tier with custom models",
                feature=Feature.CUSTOM_MODELS.value,
                tier=tier.value,
                upgrade_to=smallest_tier_with(Feature.CUSTOM_MODELS),
            )
        return new

    # -- bring your own model (enterprise) --------------------------------------------------------

    async def set_model_endpoint(self, tenant_id: str, endpoint: dict) -> dict:
        """Add or replace the tenant's own endpoint for ``endpoint["model_class"]`` (its key already sealed);
        the new snapshot carries it to the inference workers."""
        async with self.writing(tenant_id) as data:
            doc = await self.require(data)
            if not _custom_models(Tier(doc["subscription_tier"]), doc["industry"]):
                raise FeatureNotInTier("own model endpoints need a tier with custom models", feature=Feature.CUSTOM_MODELS.value,
                                       tier=doc["subscription_tier"], upgrade_to=smallest_tier_with(Feature.CUSTOM_MODELS))
            kept = [e for e in doc.get("model_endpoints") or [] if e["model_class"] != endpoint["model_class"]]
            return await self._write_endpoints(data, doc, [*kept, endpoint])

    async def delete_model_endpoint(self, tenant_id: str, model_class: str) -> None:
        async with self.writing(tenant_id) as data:
            doc = await self.require(data)
            current = doc.get("model_endpoints") or []
            kept = [e for e in current if e["model_class"] != model_class]
            if len(kept) == len(current):
                raise NotFound(f"no own endpoint for class {model_class}")
            await self._write_endpoints(data, doc, kept)

    async def reseal_secrets(self) -> dict[str, int]:
        """Encrypt every stored secret again with the first master key (after a new key was put first):
        webhook secrets, and tenants' model API keys, whose snapshots are published again with them."""
        keys = 0
        for tenant_id in await self.platform.tenant_ids(lifecycle=READY):
            async with self.writing(tenant_id) as data:
                doc = await data.tenant.find_one({"_id": tenant_id})
                if doc and doc.get("model_endpoints"):
                    resealed = [{**e, "sealed_api_key": self.box.reseal(e["sealed_api_key"])} for e in doc["model_endpoints"]]
                    await self._write_endpoints(data, doc, resealed)
                    keys += len(resealed)
        return {"webhook_secrets": await self.webhooks.reseal_all(), "model_api_keys": keys}

    async def _write_endpoints(self, data: TenantData, doc: dict, endpoints: list[dict]) -> dict:
        fields = {"model_endpoints": sorted(endpoints, key=lambda e: e["model_class"]), "version": doc["version"] + 1,
                  "updated_at": utcnow()}
        await self.events.record(data, [tenant_ref(data.tenant_id)])
        await data.tenant.update({"_id": data.tenant_id}, {"$set": fields})
        await self.events.flush(data)
        return {**doc, **fields}

    async def resource_usage(self, data: TenantData, now: datetime | None = None) -> ResourceUsage:
        return ResourceUsage(
            agents=await data.agents.count(),
            tickets_this_month=await self.tickets_opened(data, now or utcnow()),
            storage_bytes=await data.documents.sum("size_bytes"),
        )

    @staticmethod
    def _ticket_counter(data: TenantData, now: datetime) -> str:
        return f"{data.tenant_id}:tickets:{now:%Y-%m}"

    async def tickets_opened(self, data: TenantData, now: datetime) -> int:
        """Tickets opened this month, deleted ones included (deleting a ticket gives no quota back).

        A counter per month, written under the tenant's lock; never less than the tickets that exist.
        """
        counter = await data.counters.find_one({"_id": self._ticket_counter(data, now)})
        existing = await data.tickets.count({"created_at": {"$gte": month_start(now)}})
        return max(existing, counter["n"] if counter else 0)

    async def note_ticket_opened(self, data: TenantData, now: datetime, opened_before: int) -> None:
        """Count a ticket before inserting it: a crash in between costs the tenant one ticket, never the limit."""
        await data.counters.put(self._ticket_counter(data, now), {"n": opened_before + 1, "updated_at": now})

    async def excesses_for(self, data: TenantData, new: dict) -> list[Excess]:
        """What the tenant uses beyond the tier in ``new`` (a tier change to it must be refused)."""
        tier = Tier(new["subscription_tier"])
        over = excesses(await self.resource_usage(data), tier)
        if new["policy"].get("class_models") and not _custom_models(tier, new["industry"]):
            over.append(Excess(Feature.CUSTOM_MODELS.value, len(new["policy"]["class_models"]), 0, "class_models overrides"))
        if new.get("model_endpoints") and not _custom_models(tier, new["industry"]):
            over.append(Excess(Feature.CUSTOM_MODELS.value, len(new["model_endpoints"]), 0, "own model endpoints"))
        return over

    async def delete_tenant(self, tenant_id: str) -> None:
        async with self.writing(tenant_id) as data:
            doc = await data.tenant.find_one({"_id": tenant_id})
            if doc is None:
                raise NotFound("no such tenant")
            await self.cascade(data, announce=doc.get("lifecycle") == READY)

    async def cascade(self, data: TenantData, *, announce: bool = False) -> None:
        """Delete every document of the tenant and publish tombstones (resumable after a crash); with
        ``announce``, a ``deleted`` event for the tenant's webhooks first."""
        if announce:
            await self.events.record_event(data, TenantChanged(tenant_id=data.tenant_id, change=Change.DELETED))
        await self.webhooks.detach_tenant(data.tenant_id, utcnow())
        agents = await data.agents.find()
        keys = await data.api_keys.find()
        await self.events.record(data, [tenant_ref(data.tenant_id), *(agent_ref(a["_id"]) for a in agents),
                                        *(key_ref(k["_id"]) for k in keys)])
        await data.tenant.update({"_id": data.tenant_id}, {"$set": {"lifecycle": DELETING}})
        for repo in data.everything():  # keys first (revoked at once), the tenant document last
            await repo.delete_all()
        await self.events.flush(data)
        log.info("deleted tenant %s", data.tenant_id, extra={"tenant_id": data.tenant_id})

    # -- API keys ----------------------------------------------------------------------------------

    async def insert_key(self, data: TenantData, name: str, role: Role) -> tuple[dict, NewKey]:
        key = new_api_key()
        doc = {
            "_id": new_resource_id(),
            "name": name,
            "role": role.value,
            "prefix": key.visible_prefix,
            "key_hash": key.key_hash,
            "created_at": utcnow(),
            "revoked_at": None,
        }
        await data.api_keys.insert(doc)
        return {**doc, "tenant_id": data.tenant_id}, key

    async def create_key(self, tenant_id: str, name: str, role: Role) -> tuple[dict, NewKey]:
        async with self.writing(tenant_id) as data:
            await self.require(data)
            key_doc, key = await self.insert_key(data, name, role)
            # Recorded after the insert: the key's id is only known now (a crash in between loses the
            # announcement, never announces a key that does not exist).
            await self.events.record_event(data, TenantChanged(tenant_id=tenant_id, change=Change.KEY_CREATED, key_id=key_doc["_id"],
                                                               key_name=name, key_role=role.value))
            await self.events.flush(data)
        return key_doc, key

    async def list_keys(self, tenant_id: str, *, offset: int, limit: int) -> tuple[list[dict], int]:
        data = self.data(tenant_id)
        return await data.api_keys.find(skip=offset, limit=limit, sort=[("created_at", 1), ("_id", 1)]), await data.api_keys.count()

    async def revoke_key(self, tenant_id: str, key_id: str) -> None:
        """Revoke the key and publish its revocation, so its JWTs are refused everywhere at once (and, for
        the tenant's webhooks, a ``key_revoked`` event the first time)."""
        async with self.writing(tenant_id) as data:
            key = await data.api_keys.find_one({"_id": key_id})
            if key is None:
                raise NotFound("no such API key")
            await self.events.record(data, [key_ref(key_id)])
            if key.get("revoked_at") is None:
                await self.events.record_event(data, TenantChanged(tenant_id=tenant_id, change=Change.KEY_REVOKED, key_id=key_id,
                                                                   key_name=key.get("name"), key_role=key.get("role")))
            await data.api_keys.update({"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": utcnow()}})
            await self.events.flush(data)

    # -- publication sweeper -----------------------------------------------------------------------

    async def sweep(self, older_than_s: float = 0.0) -> int:
        """Publish what earlier requests could not (and finish interrupted deletions)."""
        published = 0
        for tenant_id in await self.platform.tenants_with_pending_events(utcnow() - timedelta(seconds=older_than_s)):
            async with self.writing(tenant_id) as data:
                doc = await data.tenant.find_one({"_id": tenant_id})
                if doc is not None and doc.get("lifecycle") == DELETING:
                    await self.cascade(data)
                published += await self.events.flush(data)
        return published

    async def republish_all(self) -> int:
        """Publish every tenant's and agent's snapshot again (e.g. after the topics were lost)."""
        count = 0
        for tenant_id in await self.platform.tenant_ids(lifecycle=READY):
            async with self.writing(tenant_id) as data:
                agents = await data.agents.find()
                refs = [tenant_ref(tenant_id), *(agent_ref(a["_id"]) for a in agents)]
                await self.events.record(data, refs)
                count += await self.events.flush(data, refs)
        return count

    async def run_sweeper(self) -> None:
        interval = self.settings.outbox_sweep_s
        while True:
            try:
                n = await self.sweep(older_than_s=interval)
                if n:
                    log.info("sweeper published %d pending snapshots", n)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep sweeping; the next round retries
                log.exception("snapshot sweep failed")
            await asyncio.sleep(interval)
