"""Billing's MongoDB collections, and the tenants it bills (read from the tenant service's documents).

* ``billing_statements`` — one frozen report per (tenant, month), ``_id = "<tenant>|<month>"``
  (the id of metering's monthly usage document of the same tenant and month). Inserted once: a second
  close of the same month finds it and records an adjustment instead.
* ``billing_adjustments`` — ``_id = "<tenant>|<month>|<n>"``: the n-th adjustment of that statement.
  Inserting under the next number is the write's version check: two concurrent close runs cannot both
  record the same late usage.
* ``billing_customers`` — the tenant's customer id at the payment provider (``_id = tenant id``).
* ``billing_exports`` — the meter events already exported (``_id`` = the event's identifier), so a
  re-run of the export sends nothing twice.

Statements are financial records: they are kept when a tenant is deleted (their tenant id stays).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from modelyard_core.store import TenantScoped
from modelyard_events import Tier
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from .months import Month, TierChange
from .report import Adjustment, MonthReport

#: The tenant service's collection of tenant documents (``modelyard_tenant.store.TENANTS``), read here
#: for the tier history and name; a cross-package test holds the two names equal.
TENANTS = "tenants"
READY = "ready"

STATEMENTS = "billing_statements"
ADJUSTMENTS = "billing_adjustments"
CUSTOMERS = "billing_customers"
EXPORTS = "billing_exports"


def statement_id(tenant_id: str, month: Month) -> str:
    return f"{tenant_id}|{month}"


def tier_history_records(tenant: dict) -> list[dict]:
    """The tenant document's ``tier_history`` (``{"tier", "since"}`` records, oldest first); a tenant from
    before it was kept has had its current tier since its creation."""
    return list(tenant.get("tier_history") or [{"tier": tenant["subscription_tier"], "since": tenant["created_at"]}])


def tier_history(tenant: dict) -> list[TierChange]:
    return [TierChange(Tier(c["tier"]), c["since"]) for c in tier_history_records(tenant)]


class BillingStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db
        self.statements = db[STATEMENTS]
        self.adjustments = db[ADJUSTMENTS]
        self.customers = db[CUSTOMERS]
        self.exports = db[EXPORTS]

    async def ensure_indexes(self) -> None:
        for coll in (self.statements, self.adjustments, self.exports):
            await coll.create_index([("month", ASCENDING), ("tenant_id", ASCENDING)])

    # -- tenants -----------------------------------------------------------------------------------

    async def tenant(self, tenant_id: str) -> dict | None:
        return await TenantScoped(self.db[TENANTS], tenant_id).find_one({"_id": tenant_id, "lifecycle": READY})

    async def tenants_existing_in(self, month: Month) -> list[dict]:
        """Every live tenant created before the month ended (platform-wide: reports, close, export)."""
        cursor = self.db[TENANTS].find({"lifecycle": READY, "created_at": {"$lt": month.end}}, sort=[("_id", 1)])
        return [d async for d in cursor]

    # -- statements --------------------------------------------------------------------------------

    async def statement(self, tenant_id: str, month: Month) -> dict | None:
        return await TenantScoped(self.statements, tenant_id).find_one({"_id": statement_id(tenant_id, month)})

    async def statements_of(self, month: Month, tenant_ids: Iterable[str] | None = None) -> dict[str, dict]:
        flt: dict[str, Any] = {"month": str(month)}
        if tenant_ids is not None:
            flt["tenant_id"] = {"$in": list(tenant_ids)}
        return {d["tenant_id"]: d async for d in self.statements.find(flt)}

    async def insert_statement(self, report: MonthReport, closed_at: datetime) -> bool:
        """Freeze ``report``; False if the month was already closed for the tenant (by another run)."""
        month = Month.parse(report.month)
        try:
            await self.statements.insert_one({
                "_id": statement_id(report.tenant_id, month), "tenant_id": report.tenant_id, "month": str(month),
                "closed_at": closed_at, "report": report.model_dump(mode="json"), "announced": False,
            })
        except DuplicateKeyError:
            return False
        return True

    async def mark_announced(self, tenant_id: str, month: Month) -> None:
        await TenantScoped(self.statements, tenant_id).update({"_id": statement_id(tenant_id, month)}, {"$set": {"announced": True}})

    # -- adjustments -------------------------------------------------------------------------------

    async def adjustments_of(self, tenant_id: str, month: Month) -> list[Adjustment]:
        docs = await TenantScoped(self.adjustments, tenant_id).find({"month": str(month)}, sort=[("seq", 1)])
        return [Adjustment.model_validate(d["adjustment"]) for d in docs]

    async def insert_adjustment(self, tenant_id: str, month: Month, seq: int, adjustment: Adjustment) -> bool:
        """Record adjustment number ``seq``; False if another run recorded that number first."""
        adjustment_id = f"{statement_id(tenant_id, month)}|{seq}"
        stored = adjustment.model_copy(update={"adjustment_id": adjustment_id})
        try:
            await self.adjustments.insert_one({"_id": adjustment_id, "tenant_id": tenant_id, "month": str(month), "seq": seq,
                                               "adjustment": stored.model_dump(mode="json")})
        except DuplicateKeyError:
            return False
        return True

    # -- payment provider --------------------------------------------------------------------------

    async def customer_ids(self) -> dict[str, str]:
        return {d["_id"]: d["stripe_customer_id"] async for d in self.customers.find({})}

    async def customer_id(self, tenant_id: str) -> str | None:
        doc = await TenantScoped(self.customers, tenant_id).find_one({"_id": tenant_id})
        return doc["stripe_customer_id"] if doc else None

    async def set_customer_id(self, tenant_id: str, stripe_customer_id: str, now: datetime) -> None:
        await self.customers.replace_one({"_id": tenant_id}, {"_id": tenant_id, "tenant_id": tenant_id,
                                                              "stripe_customer_id": stripe_customer_id, "updated_at": now},
                                         upsert=True)

    async def exported(self, identifiers: list[str]) -> set[str]:
        return {d["_id"] async for d in self.exports.find({"_id": {"$in": identifiers}}, projection={"_id": 1})}

    async def mark_exported(self, events: list[dict], now: datetime) -> None:
        for e in events:
            await self.exports.replace_one({"_id": e["identifier"]}, {
                "_id": e["identifier"], "tenant_id": e["tenant_id"], "month": e["month"], "exported_at": now}, upsert=True)
