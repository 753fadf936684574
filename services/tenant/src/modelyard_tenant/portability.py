"""Export a tenant as one JSON document, and import such a document back (a round trip).

API keys are not exported (only their hashes exist); an import issues a new tenant_admin key.
Metering's usage documents travel as MongoDB relaxed extended JSON, so dates and ids keep their types.

Without transactions an import is made resumable instead of atomic: the tenant document is written
first with ``lifecycle: importing`` (invisible to the API), then every resource by its id (a
replace, so repeating it is harmless), then the tenant becomes ``ready``. An interrupted import is
completed by posting the same document again.
"""

from __future__ import annotations

import json
from typing import Any

from bson import json_util
from bson.errors import InvalidDocument
from modelyard_events import Change, TenantChanged, Tier
from modelyard_tenancy import Role
from pymongo.errors import DuplicateKeyError, WriteError

from .errors import Conflict, InvalidField, NotFound
from .outbox import agent_ref, tenant_ref
from .plans import ResourceUsage, excesses
from .resources import KINDS
from .schemas import EXPORT_FORMAT, TenantExport, TenantRecord
from .service import DowngradeRefused, TenantService, month_start, utcnow
from .store import IMPORTING, ORDER, READY, TenantData

RESOURCE_LISTS = ("agents", "roles", "tickets", "documents")


class ImportRefused(DowngradeRefused):
    code = "import_exceeds_limits"


async def export_tenant(service: TenantService, tenant_id: str) -> TenantExport:
    async with service.writing(tenant_id) as data:  # locked: a consistent picture
        doc = await service.require(data)
        body: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "exported_at": utcnow(),
            "tenant": TenantRecord.model_validate({k: v for k, v in doc.items() if k in TenantRecord.model_fields}),
        }
        for name in RESOURCE_LISTS:
            kind = KINDS[name]
            body[name] = [kind.to_out(d) for d in await data.resources(name).find(sort=ORDER)]
        body["usage"] = {
            name: [json.loads(json_util.dumps(d, json_options=json_util.RELAXED_JSON_OPTIONS)) for d in docs]
            for name, repo in data.usage.items()
            if (docs := await repo.find(sort=[("_id", 1)]))
        }
        await service.events.record_event(data, TenantChanged(tenant_id=tenant_id, change=Change.EXPORTED))
        await service.events.flush(data)
    return TenantExport.model_validate(body)


def _check_ownership(body: TenantExport, usage_collections: tuple[str, ...]) -> None:
    tenant_id = body.tenant.tenant_id
    errors = []
    for name in RESOURCE_LISTS:
        for i, item in enumerate(getattr(body, name)):
            if item.tenant_id != tenant_id:
                errors.append({"loc": ["body", name, i, "tenant_id"], "msg": "belongs to another tenant", "type": "value_error"})
    for name, docs in body.usage.items():
        if name not in usage_collections:  # an import writes only where usage lives, never elsewhere
            errors.append({"loc": ["body", "usage", name], "msg": "not a usage collection", "type": "value_error"})
            continue
        for i, doc in enumerate(docs):
            if doc.get("tenant_id") != tenant_id or "_id" not in doc:
                errors.append({"loc": ["body", "usage", name, i], "msg": "usage documents need an _id and the tenant's tenant_id", "type": "value_error"})
    if errors:
        raise InvalidField(errors)


def _usage_of(body: TenantExport) -> ResourceUsage:
    since = month_start(utcnow())
    return ResourceUsage(
        agents=len(body.agents),
        tickets_this_month=sum(1 for t in body.tickets if t.created_at >= since),
        storage_bytes=sum(d.size_bytes for d in body.documents),
    )


async def import_tenant(service: TenantService, body: TenantExport) -> tuple[dict, dict, Any, dict[str, int]]:
    _check_ownership(body, service.settings.usage_collections)
    tenant = body.tenant
    over = excesses(_usage_of(body), Tier(tenant.subscription_tier))
    if over:
        raise ImportRefused(f"the export exceeds the {tenant.subscription_tier} tier's limits", exceeded=[e.as_dict() for e in over])
    tenant_id = tenant.tenant_id
    async with service.writing(tenant_id) as data:
        existing = await data.tenant.find_one({"_id": tenant_id})
        if existing is not None and existing.get("lifecycle") != IMPORTING:
            raise Conflict("a tenant with this id exists", tenant_id=tenant_id)
        await service.events.record(data, [tenant_ref(tenant_id), *(agent_ref(a.agent_id) for a in body.agents)])
        # A tenant deleted and imported again goes on counting versions, so consumers never see one repeat.
        doc = {**tenant.model_dump(mode="json", exclude={"created_at", "updated_at", "tier_history"}),
               "created_at": tenant.created_at, "updated_at": utcnow(),
               "tier_history": [{"tier": c.tier.value, "since": c.since} for c in tenant.tier_history]}
        doc.update(version=tenant.version + 1, lifecycle=IMPORTING)
        await data.tenant.put(tenant_id, doc)
        try:
            counts = await _write_documents(data, body)
        except (DuplicateKeyError, WriteError, InvalidDocument) as exc:
            # E.g. an id another tenant already uses: undo the partial import (it never became visible).
            await service.cascade(data)
            if isinstance(exc, DuplicateKeyError):
                raise Conflict("a document id of the export is already in use", reason=str(exc)[:300]) from None
            raise InvalidField([{"loc": ["body"], "msg": f"a document could not be stored: {str(exc)[:300]}", "type": "value_error"}]) from None
        await data.tenant.update({"_id": tenant_id}, {"$set": {"lifecycle": READY}})
        key_doc, key = await service.insert_key(data, "imported tenant administrator key", Role.TENANT_ADMIN)
        await service.events.flush(data)
        final = await data.tenant.find_one({"_id": tenant_id})
    if final is None:
        raise NotFound("tenant vanished during import")
    return final, key_doc, key, counts


async def _write_documents(data: TenantData, body: TenantExport) -> dict[str, int]:
    """Every resource and usage document of the export, each replaced by id (so a retry is harmless)."""
    counts = {}
    for name in RESOURCE_LISTS:
        kind = KINDS[name]
        repo = data.resources(name)
        items = getattr(body, name)
        for item in items:
            fields = item.model_dump(mode="json", exclude={kind.id_field, "created_at", "updated_at"})
            await repo.put(getattr(item, kind.id_field), {**fields, "created_at": item.created_at, "updated_at": item.updated_at})
        counts[name] = len(items)
    for name, docs in body.usage.items():
        for raw in docs:
            usage_doc = json_util.loads(json.dumps(raw))
            await data.usage[name].put(usage_doc.pop("_id"), usage_doc)
        counts[name] = len(docs)
    return counts
