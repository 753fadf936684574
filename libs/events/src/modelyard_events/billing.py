"""Billing events: a closed monthly report, and metered usage for a payment provider.

``MonthClosed`` travels on ``billing.statements`` (key: tenant id) when a month's report is frozen;
the webhook dispatcher tells tenants. ``MeterEventExported`` travels on ``billing.meter_events``
(key: its ``identifier``): one Stripe Billing meter event each, in the shape of Stripe's
``POST /v1/billing/meter_events`` parameters, for a connector to forward. Its ``identifier`` (and
``event_id``) are derived from the usage document it reports, the meter and the report line, so the
same line exported twice is recognisably the same event (Stripe de-duplicates on ``identifier``).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from .base import ID_MAX, Event


class MonthClosed(Event):
    """A tenant's report of ``month`` was frozen (later usage goes into adjustment lines)."""

    TYPE: ClassVar[str] = "modelyard.billing.month_closed.v1"
    type: Literal["modelyard.billing.month_closed.v1"] = "modelyard.billing.month_closed.v1"

    month: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="The calendar month (UTC), YYYY-MM.")
    closed_at: datetime
    currency: str = Field(pattern="^[a-z]{3}$")
    base_cents: int = Field(ge=0)
    overage_cents: int = Field(ge=0)
    total_cents: int = Field(ge=0, description="What the closed report charges, in the currency's minor unit.")


class MeterEventExported(Event):
    """One Stripe Billing meter event (``POST /v1/billing/meter_events``), ready to forward."""

    TYPE: ClassVar[str] = "modelyard.billing.meter_event.v1"
    type: Literal["modelyard.billing.meter_event.v1"] = "modelyard.billing.meter_event.v1"

    event_name: str = Field(max_length=100, description="Stripe's `event_name`: the meter's event name.")
    identifier: str = Field(max_length=100, description="Stripe's `identifier` (and the Idempotency-Key): derived "
                            "from the usage document id, the meter and the report line.")
    timestamp: int = Field(description="Stripe's `timestamp` (Unix seconds): the month's last second.")
    stripe_customer_id: str = Field(max_length=ID_MAX, description="Stripe's `payload[stripe_customer_id]`.")
    value: int = Field(gt=0, description="Stripe's `payload[value]`: a whole number (usage only grows, so an "
                       "adjustment is a further positive event).")
    meter: Literal["overage_tokens", "tokens", "queries"] = Field(description="What `value` counts: tokens billed as "
                                                                  "overage, billable tokens, or queries.")
    month: str = Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    line: str = Field(max_length=ID_MAX, description="`report`, or the adjustment id this value comes from.")
