"""Agents, roles, tickets and documents: create, read, list, update, delete within one tenant.

Quotas are checked under the tenant's lock against counts of the real documents, so a tenant at its
limit cannot get past it with concurrent requests, on one replica or several.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard_events import Tier
from pydantic import BaseModel, ValidationError

from .errors import Conflict, InvalidField, NotFound, QuotaExceeded, field_error
from .outbox import agent_ref
from .permissions import Action
from .plans import capacity, tier_allowing
from .schemas import (
    AgentCreate,
    AgentOut,
    AgentUpdate,
    DocumentCreate,
    DocumentOut,
    DocumentUpdate,
    RoleCreate,
    RoleOut,
    RoleUpdate,
    TicketCreate,
    TicketOut,
    TicketUpdate,
    content_size,
)
from .service import TenantService, new_resource_id, utcnow
from .store import AGENTS, DOCUMENTS, ORDER, ROLES, TICKETS, TenantData


@dataclass(frozen=True)
class Kind:
    name: str  # collection and path segment
    singular: str
    id_field: str
    create: type[BaseModel]
    update: type[BaseModel]
    out: type[BaseModel]
    write_action: Action

    def to_out(self, doc: dict) -> BaseModel:
        fields = {k: v for k, v in doc.items() if k != "_id"}
        return self.out.model_validate({**fields, self.id_field: doc["_id"]})


KINDS: dict[str, Kind] = {
    AGENTS: Kind(AGENTS, "agent", "agent_id", AgentCreate, AgentUpdate, AgentOut, Action.WRITE_CONFIG),
    ROLES: Kind(ROLES, "role", "role_id", RoleCreate, RoleUpdate, RoleOut, Action.WRITE_CONFIG),
    TICKETS: Kind(TICKETS, "ticket", "ticket_id", TicketCreate, TicketUpdate, TicketOut, Action.WRITE_WORK),
    DOCUMENTS: Kind(DOCUMENTS, "document", "document_id", DocumentCreate, DocumentUpdate, DocumentOut, Action.WRITE_WORK),
}


def quota_error(limit: str, tier: Tier, current: int, requested: int, *, period: str | None = None) -> QuotaExceeded:
    allowed = capacity(tier, limit)
    upgrade = tier_allowing(limit, current + requested)
    unit = "bytes" if limit == "storage_mb" else "count"
    details = {"limit": limit, "tier": tier.value, "current": current, "requested": requested, "allowed": allowed, "unit": unit}
    if period:
        details["period"] = period
    return QuotaExceeded(
        f"{limit} limit of the {tier.value} tier reached ({current} of {allowed} {unit})"
        + (f"; the {upgrade.value} tier allows it" if upgrade else ""),
        upgrade_to=upgrade.value if upgrade else None,
        **details,
    )


def _fields_from(model: BaseModel, **kw: object) -> dict:
    return model.model_dump(mode="json", **kw)


class Resources:
    def __init__(self, service: TenantService) -> None:
        self.service = service

    # -- reads -------------------------------------------------------------------------------------

    async def get(self, tenant_id: str, kind: Kind, resource_id: str) -> BaseModel:
        doc = await self.service.data(tenant_id).resources(kind.name).find_one({"_id": resource_id})
        if doc is None:
            raise NotFound(f"no such {kind.singular}")
        return kind.to_out(doc)

    async def list(self, tenant_id: str, kind: Kind, *, offset: int, limit: int) -> tuple[list[BaseModel], int]:
        repo = self.service.data(tenant_id).resources(kind.name)
        docs = await repo.find(skip=offset, limit=limit, sort=ORDER)
        return [kind.to_out(d) for d in docs], await repo.count()

    # -- writes ------------------------------------------------------------------------------------

    async def create(self, tenant_id: str, kind: Kind, body: BaseModel) -> BaseModel:
        fields = _fields_from(body)
        if kind.name == DOCUMENTS and fields.get("content") is not None:
            fields["size_bytes"] = content_size(fields["content"])
        async with self.service.writing(tenant_id) as data:
            tenant = await self.service.require(data)
            tier = Tier(tenant["subscription_tier"])
            opened = await self._check(data, kind, tier, fields, None)
            now = utcnow()
            if kind.name == TICKETS:
                await self.service.note_ticket_opened(data, now, opened)
            doc = {"_id": new_resource_id(), **fields, "created_at": now, "updated_at": now}
            if kind.name == AGENTS:
                await self.service.events.record(data, [agent_ref(doc["_id"])])
            await data.resources(kind.name).insert(doc)
            if kind.name == AGENTS:
                await self.service.events.flush(data, [agent_ref(doc["_id"])])
        return kind.to_out({**doc, "tenant_id": tenant_id})

    async def update(self, tenant_id: str, kind: Kind, resource_id: str, body: BaseModel) -> BaseModel:
        changes = _fields_from(body, exclude_unset=True)
        async with self.service.writing(tenant_id) as data:
            tenant = await self.service.require(data)
            repo = data.resources(kind.name)
            old = await repo.find_one({"_id": resource_id})
            if old is None:
                raise NotFound(f"no such {kind.singular}")
            merged = {**old, **changes}
            if kind.name == DOCUMENTS:
                merged["size_bytes"] = self._document_size(old, changes)
            self._revalidate(kind, merged)
            await self._check(data, kind, Tier(tenant["subscription_tier"]), merged, old)
            merged["updated_at"] = utcnow()
            fields = {k: v for k, v in merged.items() if k not in ("_id", "tenant_id", "created_at")}
            if kind.name == AGENTS:
                await self.service.events.record(data, [agent_ref(resource_id)])
            await repo.update({"_id": resource_id}, {"$set": fields})
            if kind.name == AGENTS:
                await self.service.events.flush(data, [agent_ref(resource_id)])
        return kind.to_out(merged)

    async def delete(self, tenant_id: str, kind: Kind, resource_id: str) -> None:
        async with self.service.writing(tenant_id) as data:
            await self.service.require(data)
            repo = data.resources(kind.name)
            if await repo.find_one({"_id": resource_id}) is None:
                raise NotFound(f"no such {kind.singular}")
            if kind.name == AGENTS:
                await self.service.events.record(data, [agent_ref(resource_id)])
            await repo.delete({"_id": resource_id})
            if kind.name == AGENTS:
                # Tickets of a deleted agent become unassigned rather than pointing at nothing.
                await data.tickets.update_where({"assigned_agent_id": resource_id}, {"$set": {"assigned_agent_id": None}})
                await self.service.events.flush(data, [agent_ref(resource_id)])

    # -- rules -------------------------------------------------------------------------------------

    @staticmethod
    def _document_size(old: dict, changes: dict) -> int:
        content = changes["content"] if "content" in changes else old.get("content")
        if content is not None:
            size = content_size(content)
            if "size_bytes" in changes and changes["size_bytes"] != size:
                raise field_error("size_bytes", "size_bytes must equal the UTF-8 length of content")
            return size
        return changes.get("size_bytes", old["size_bytes"])

    @staticmethod
    def _revalidate(kind: Kind, merged: dict) -> None:
        """The merged document must still be a valid resource (e.g. a document keeps a size)."""
        try:
            kind.create.model_validate({k: v for k, v in merged.items() if k in kind.create.model_fields})
        except ValidationError as exc:
            raise InvalidField([{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]) from None

    async def _check(self, data: TenantData, kind: Kind, tier: Tier, fields: dict, old: dict | None) -> int:
        """Quotas and references; raises before anything is written. Returns the count it checked."""
        current = 0
        if kind.name == AGENTS and old is None:
            current = await data.agents.count()
            if current + 1 > capacity(tier, "agents"):
                raise quota_error("agents", tier, current, 1)
        elif kind.name == TICKETS:
            if old is None:
                now = utcnow()
                current = await self.service.tickets_opened(data, now)
                if current + 1 > capacity(tier, "tickets_per_month"):
                    raise quota_error("tickets_per_month", tier, current, 1, period=f"{now:%Y-%m}")
            agent = fields.get("assigned_agent_id")
            if agent is not None and (old is None or agent != old.get("assigned_agent_id")):
                if await data.agents.find_one({"_id": agent}) is None:
                    raise field_error("assigned_agent_id", "no such agent in this tenant")
        elif kind.name == DOCUMENTS:
            old_size = old["size_bytes"] if old else 0
            growth = fields["size_bytes"] - old_size
            if growth > 0:
                used = await data.documents.sum("size_bytes")
                if used + growth > capacity(tier, "storage_mb"):
                    raise quota_error("storage_mb", tier, used, growth)
        elif kind.name == ROLES:
            same = await data.roles.find_one({"name": fields["name"]})
            if same is not None and (old is None or same["_id"] != old["_id"]):
                raise Conflict(f"a role named {fields['name']!r} exists", role_id=same["_id"])
        return current
