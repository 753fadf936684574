"""The payment-provider export: Stripe Billing meter events of closed months, never twice.

Per closed statement (tenant, month) and meter, one meter event carries the frozen report's value;
each adjustment recorded later carries its own increase as a further event. Meters:

* ``overage_tokens`` — the tokens the report bills as overage: with a per-unit price on this meter and
  the tier's base price as a flat subscription price, the provider's invoice equals the report;
* ``tokens`` — billable (platform-paid) tokens, and ``queries`` — for usage shown on the invoice.

Idempotency, twice over:

* the ``identifier`` (Stripe's de-duplication key, also sent as ``Idempotency-Key``) is derived from
  the usage id of the line — metering's monthly usage document ``<tenant>|<month>``, which is also the
  statement's id — the meter and the line (``report`` or the adjustment id): the same line always has
  the same identifier, so a retried or replayed request is dropped by the provider;
* the provider only remembers identifiers for a while (Stripe: at least 24 hours), so the export also
  records every identifier it exported (``billing_exports``) and a re-run sends only lines not sent yet
  (``--all`` writes them all again, with the same identifiers).

Stripe takes meter events up to 35 days old: the month's events carry its last second as timestamp,
so a month is exported within 35 days of its end (an adjustment recorded later is refused there and
needs an invoice item instead; the summary lists such lines as ``too_old``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

from modelyard_core.bus import Bus, Outgoing
from modelyard_events import MeterEventExported, derived_id

from .months import Month
from .report import Adjustment, MonthReport
from .service import Billing, utcnow
from .store import statement_id

STRIPE_METER_EVENTS_URL = "https://api.stripe.com/v1/billing/meter_events"
STRIPE_MAX_AGE = timedelta(days=35)
Meter = Literal["overage_tokens", "tokens", "queries"]


def identifier(usage_id: str, meter: str, line: str) -> str:
    return f"my-{derived_id(usage_id, 'stripe-meter-event', meter, line)}"


def stripe_params(event: MeterEventExported) -> dict:
    """The parameters of ``POST /v1/billing/meter_events`` (Stripe sends payload values as strings)."""
    return {"event_name": event.event_name, "identifier": event.identifier, "timestamp": event.timestamp,
            "payload": {"stripe_customer_id": event.stripe_customer_id, "value": str(event.value)}}


@dataclass(frozen=True)
class StripeRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: str


def stripe_request(event: MeterEventExported) -> StripeRequest:
    """The HTTP request a connector sends for ``event`` (form-encoded, as Stripe's v1 API takes it;
    the secret key goes in ``Authorization`` and is not part of the export)."""
    body = urlencode([("event_name", event.event_name), ("identifier", event.identifier),
                      ("payload[stripe_customer_id]", event.stripe_customer_id), ("payload[value]", str(event.value)),
                      ("timestamp", str(event.timestamp))])
    return StripeRequest("POST", STRIPE_METER_EVENTS_URL,
                         {"Content-Type": "application/x-www-form-urlencoded", "Idempotency-Key": event.identifier}, body)


@dataclass
class ExportResult:
    month: str
    events: list[MeterEventExported] = field(default_factory=list)
    already_exported: int = 0
    statements: int = 0
    unmapped: list[str] = field(default_factory=list)  # tenants without a customer id: nothing exported for them
    too_old: list[str] = field(default_factory=list)  # identifiers past the provider's 35 days

    def summary(self) -> dict:
        return {"month": self.month, "statements": self.statements, "events": len(self.events),
                "already_exported": self.already_exported, "unmapped_tenants": self.unmapped, "too_old": self.too_old}


class Exporter:
    def __init__(self, billing: Billing, names: dict[str, str], *, bus: Bus | None = None) -> None:
        self.billing = billing
        self.names = names  # meter -> Stripe event name (``BillingSettings.meters``)
        self.bus = bus

    def _events(self, tenant_id: str, month: Month, customer: str, line: str, values: dict[str, int]) -> list[MeterEventExported]:
        usage_id = statement_id(tenant_id, month)
        out = []
        for meter, value in values.items():
            if value < 0:
                raise ValueError(f"{usage_id} line {line}: {meter} decreased by {-value}; a meter event cannot take "
                                 "that back (cancel the earlier event at the provider)")
            if value == 0:
                continue
            ident = identifier(usage_id, meter, line)
            out.append(MeterEventExported(event_id=ident.removeprefix("my-"), tenant_id=tenant_id, event_name=self.names[meter],
                                          identifier=ident, timestamp=int(month.last_second.timestamp()),
                                          stripe_customer_id=customer, value=value, meter=meter, month=str(month), line=line))
        return out

    def lines(self, report: MonthReport, adjustments: list[Adjustment], customer: str) -> list[MeterEventExported]:
        month = Month.parse(report.month)
        events = self._events(report.tenant_id, month, customer, "report", {
            "overage_tokens": report.overage_tokens, "tokens": report.billable_tokens, "queries": report.usage.queries})
        for a in adjustments:
            events += self._events(report.tenant_id, month, customer, a.adjustment_id or "", {
                "overage_tokens": a.overage_tokens, "tokens": a.usage.billable_tokens, "queries": a.usage.queries})
        return events

    async def export(self, month: Month, *, include_exported: bool = False, now: datetime | None = None) -> ExportResult:
        """The meter events of ``month``'s closed statements not exported yet (all with ``include_exported``),
        published on ``billing.meter_events`` when there is a bus. Call ``commit`` once they are delivered."""
        now = now or utcnow()
        store = self.billing.store
        customers = await store.customer_ids()
        result = ExportResult(str(month))
        for tenant_id, doc in sorted((await store.statements_of(month)).items()):
            result.statements += 1
            if tenant_id not in customers:
                result.unmapped.append(tenant_id)
                continue
            report = MonthReport.model_validate(doc["report"])
            result.events += self.lines(report, await store.adjustments_of(tenant_id, month), customers[tenant_id])
        if not include_exported:
            done = await store.exported([e.identifier for e in result.events])
            result.already_exported = len(done)
            result.events = [e for e in result.events if e.identifier not in done]
        result.too_old = [e.identifier for e in result.events if now - month.last_second > STRIPE_MAX_AGE]
        if self.bus is not None and result.events:
            topic = self.bus.topics.name("meter_events")
            await self.bus.ensure_topics([topic])
            await self.bus.publish([Outgoing(topic, e, key=e.identifier) for e in result.events])
        return result

    async def commit(self, result: ExportResult, now: datetime | None = None) -> None:
        """Record ``result``'s events as exported: the next run leaves them out."""
        await self.billing.store.mark_exported([e.model_dump(mode="json") for e in result.events], now or utcnow())
