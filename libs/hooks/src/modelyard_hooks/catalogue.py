"""The webhook events a tenant can subscribe to, and how each is made from an event on the bus.

| webhook type           | from                                   | ordered per endpoint by            |
|------------------------|----------------------------------------|------------------------------------|
| `quota.warning`        | ``TenantAlert`` at 80% (tenants.alerts)  | metric and period (80% before 100%) |
| `quota.exceeded`       | ``TenantAlert`` at 100%                  | metric and period                   |
| `tier.changed`         | ``TenantChanged`` (tenants.events)       | the tenant (each carries `version`) |
| `key.created`          | ``TenantChanged``                        | the key (created before revoked)    |
| `key.revoked`          | ``TenantChanged``                        | the key                             |
| `tenant.exported`      | ``TenantChanged``                        | not ordered                         |
| `tenant.deleted`       | ``TenantChanged``                        | not ordered (the last one)          |
| `billing.month_closed` | ``MonthClosed`` (billing.statements)     | not ordered                         |

The webhook id (``webhook-id`` header, ``id`` in the body) is ``evt_`` + the bus event's id, which is
itself deterministic where it matters (an alert's id is derived from tenant, metric, period and
threshold): an event redelivered on the bus becomes the same webhook, and a receiver that remembers
the ids it processed sees each event once. The body is fixed when the delivery is created, so every
attempt sends the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from modelyard_events import Change, Event, MonthClosed, TenantAlert, TenantChanged


class WebhookType(StrEnum):
    QUOTA_WARNING = "quota.warning"
    QUOTA_EXCEEDED = "quota.exceeded"
    TIER_CHANGED = "tier.changed"
    KEY_CREATED = "key.created"
    KEY_REVOKED = "key.revoked"
    TENANT_EXPORTED = "tenant.exported"
    TENANT_DELETED = "tenant.deleted"
    BILLING_MONTH_CLOSED = "billing.month_closed"


CHANGE_TYPES = {
    Change.TIER_CHANGED: WebhookType.TIER_CHANGED,
    Change.KEY_CREATED: WebhookType.KEY_CREATED,
    Change.KEY_REVOKED: WebhookType.KEY_REVOKED,
    Change.EXPORTED: WebhookType.TENANT_EXPORTED,
    Change.DELETED: WebhookType.TENANT_DELETED,
}


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    webhook_id: str
    type: WebhookType
    tenant_id: str
    timestamp: datetime
    data: dict[str, Any]
    #: Deliveries to one endpoint with the same key are sent in order; None: no order needed.
    ordering_key: str | None

    def body(self) -> str:
        """The JSON body, compact and with sorted keys: the same event always gives the same bytes."""
        return json.dumps({"id": self.webhook_id, "type": self.type.value, "tenant_id": self.tenant_id,
                           "timestamp": self.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"), "data": self.data},
                          sort_keys=True, separators=(",", ":"))


def webhook_event(event: Event) -> WebhookEvent | None:
    """The webhook of a bus event (None for an event no webhook reports)."""
    common = {"webhook_id": f"evt_{event.event_id}", "tenant_id": event.tenant_id, "timestamp": event.time}
    if isinstance(event, TenantAlert):
        kind = WebhookType.QUOTA_WARNING if event.threshold_pct < 100 else WebhookType.QUOTA_EXCEEDED
        return WebhookEvent(type=kind, ordering_key=f"quota:{event.metric.value}:{event.period}", **common, data={
            "metric": event.metric.value, "threshold_pct": event.threshold_pct, "period": event.period,
            "value": event.value, "limit": event.limit})
    if isinstance(event, TenantChanged):
        kind = CHANGE_TYPES[event.change]
        data = {k: v for k, v in event.model_dump(mode="json", include={"version", "from_tier", "to_tier", "key_id", "key_name",
                                                                         "key_role"}).items() if v is not None}
        key = {WebhookType.TIER_CHANGED: "tier", WebhookType.KEY_CREATED: f"key:{event.key_id}",
               WebhookType.KEY_REVOKED: f"key:{event.key_id}"}.get(kind)
        return WebhookEvent(type=kind, ordering_key=key, data=data, **common)
    if isinstance(event, MonthClosed):
        return WebhookEvent(type=WebhookType.BILLING_MONTH_CLOSED, ordering_key=None, **common, data=event.model_dump(
            mode="json", include={"month", "closed_at", "currency", "base_cents", "overage_cents", "total_cents"}))
    return None
