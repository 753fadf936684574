"""Billing's operations over the database: reports (live or frozen), the monthly close, customer ids.

Used by the tenant API (``GET /v1/tenants/{id}/billing/{month}``, ``POST /v1/billing/{month}/close``)
and the ``modelyard billing`` commands alike, so both give the same answers.

A report of an **open** month is computed from the usage documents on every read. **Closing** a
month (only once it is over, UTC) freezes each tenant's report as a statement and announces it
(``MonthClosed`` on ``billing.statements``). A closed report never changes: a read returns the frozen
lines, the adjustments recorded since, and — separately, outside the total — a *pending* adjustment
for usage metered after the close. Running the close again records that pending adjustment (once:
adjustments are numbered, see ``store``), so late usage always ends up in a line of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from modelyard_core.bus import Bus, Outgoing
from modelyard_events import MonthClosed, derived_id
from modelyard_usage import read
from pymongo.asynchronous.database import AsyncDatabase

from .months import Month
from .prices import PriceList
from .report import MonthReport, ReportStatus, build_report, settle
from .store import BillingStore, statement_id, tier_history


class MonthNotOver(ValueError):
    """A month can be closed only after it ended (UTC)."""


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON's precision: what a read returns


@dataclass(frozen=True)
class CloseResult:
    tenant_id: str
    outcome: str  # "closed", "adjusted" or "unchanged"
    total_cents: int
    adjustment_id: str | None = None

    def as_dict(self) -> dict:
        return {"tenant_id": self.tenant_id, "outcome": self.outcome, "total_cents": self.total_cents,
                "adjustment_id": self.adjustment_id}


class Billing:
    def __init__(self, db: AsyncDatabase, prices: PriceList, *, bus: Bus | None = None) -> None:
        self.db = db
        self.prices = prices
        self.store = BillingStore(db)
        self.bus = bus

    # -- reports -----------------------------------------------------------------------------------

    def _live(self, tenant: dict, month: Month, usage_docs: list[dict], now: datetime) -> MonthReport:
        return build_report(tenant_id=tenant["_id"], organization_name=tenant.get("organization_name", ""), month=month,
                            history=tier_history(tenant), usage_docs=usage_docs, prices=self.prices, now=now)

    async def _present(self, live: MonthReport, statement: dict | None) -> MonthReport:
        """``live`` for an open month; for a closed one the frozen report, its adjustments and what is pending."""
        if statement is None:
            return live
        month = Month.parse(live.month)
        frozen = MonthReport.model_validate(statement["report"])
        recorded = await self.store.adjustments_of(live.tenant_id, month)
        return frozen.model_copy(update={
            "status": ReportStatus.CLOSED, "closed_at": statement["closed_at"], "generated_at": live.generated_at,
            "adjustments": recorded, "pending_adjustment": settle(frozen, recorded, live),
            "total_cents": frozen.total_cents + sum(a.amount_cents for a in recorded),
        })

    async def report(self, tenant: dict, month: Month, now: datetime | None = None) -> MonthReport:
        """One tenant's report of ``month`` (``tenant``: its document, as the tenant API holds it)."""
        now = now or utcnow()
        docs = await read.daily_documents(self.db, month.first_day, month.last_day, tenant["_id"])
        live = self._live(tenant, month, docs, now)
        return await self._present(live, await self.store.statement(tenant["_id"], month))

    async def reports(self, month: Month, tenant_ids: Iterable[str] | None = None, now: datetime | None = None) -> list[MonthReport]:
        """The reports of every tenant that existed in ``month`` (or of ``tenant_ids``), by tenant id."""
        now = now or utcnow()
        wanted = set(tenant_ids) if tenant_ids is not None else None
        tenants = [t for t in await self.store.tenants_existing_in(month) if wanted is None or t["_id"] in wanted]
        by_tenant: dict[str, list[dict]] = defaultdict(list)
        for doc in await read.daily_documents(self.db, month.first_day, month.last_day):
            by_tenant[doc["tenant_id"]].append(doc)
        statements = await self.store.statements_of(month, [t["_id"] for t in tenants])
        return [await self._present(self._live(t, month, by_tenant.get(t["_id"], []), now), statements.get(t["_id"]))
                for t in tenants]

    # -- the monthly close -------------------------------------------------------------------------

    async def close(self, month: Month, *, tenant_ids: Iterable[str] | None = None, now: datetime | None = None) -> list[CloseResult]:
        """Freeze every tenant's report of ``month``; for reports already frozen, record late usage as an
        adjustment. Safe to run again, and concurrently: each statement and adjustment is inserted once."""
        now = now or utcnow()
        if month.end > now:
            raise MonthNotOver(f"{month} is not over until {month.end.isoformat()}; it can be closed after that")
        results = []
        for report in await self.reports(month, tenant_ids, now):
            if report.status is ReportStatus.OPEN:
                if await self.store.insert_statement(report, now):
                    results.append(CloseResult(report.tenant_id, "closed", report.total_cents))
                    continue
                # Another run closed it a moment ago: what it froze is the report, ours is the live usage.
                report = await self._present(report, await self.store.statement(report.tenant_id, month))
            results.append(await self._record_pending(report, month, now))
        await self.announce(month)
        return results

    async def _record_pending(self, report: MonthReport, month: Month, now: datetime) -> CloseResult:
        pending = report.pending_adjustment
        if pending is None:
            return CloseResult(report.tenant_id, "unchanged", report.total_cents)
        seq = len(report.adjustments) + 1
        recorded = pending.model_copy(update={"recorded_at": now})
        if not await self.store.insert_adjustment(report.tenant_id, month, seq, recorded):
            return CloseResult(report.tenant_id, "unchanged", report.total_cents)  # another run recorded it
        return CloseResult(report.tenant_id, "adjusted", report.total_cents + pending.amount_cents,
                           f"{statement_id(report.tenant_id, month)}|{seq}")

    async def announce(self, month: Month) -> int:
        """Publish ``MonthClosed`` for every statement of ``month`` not announced yet (none without a bus)."""
        if self.bus is None:
            return 0
        topic = self.bus.topics.name("billing_statements")
        done = 0
        async for doc in self.store.statements.find({"month": str(month), "announced": False}):
            report = MonthReport.model_validate(doc["report"])
            event = MonthClosed(event_id=derived_id(doc["_id"], "month_closed"), tenant_id=doc["tenant_id"], month=str(month),
                                closed_at=doc["closed_at"], currency=report.currency, base_cents=report.base_cents,
                                overage_cents=report.overage_cents, total_cents=report.total_cents)
            await self.bus.publish([Outgoing(topic, event)])
            await self.store.mark_announced(doc["tenant_id"], month)
            done += 1
        return done
