"""Billing: monthly reports from the usage read model, the monthly close, the payment-provider export.

* ``prices`` — the price list (per tier: base price, included tokens, overage rate), in cents;
* ``money`` — integer money and the one rounding rule;
* ``months`` — calendar months (UTC) and the tier on each day of one (proration by day);
* ``report`` — a report as plain code (usage documents + tier history + price list → lines);
* ``service`` — reports, the close and its adjustments over MongoDB (``store``);
* ``export`` — Stripe Billing meter events of closed months, idempotent across re-runs.

The tenant API serves it over HTTP and ``modelyard billing`` on the command line; no service imports
another for it.
"""

from .months import InvalidMonth, Month, TierChange
from .prices import BillingSettings, PriceList, TierPrice
from .report import Adjustment, MonthReport, ReportStatus, UsageLine
from .service import Billing, CloseResult, MonthNotOver
from .store import BillingStore, tier_history, tier_history_records

__all__ = [
    "Adjustment",
    "Billing",
    "BillingSettings",
    "BillingStore",
    "CloseResult",
    "InvalidMonth",
    "Month",
    "MonthNotOver",
    "MonthReport",
    "PriceList",
    "ReportStatus",
    "TierChange",
    "TierPrice",
    "UsageLine",
    "tier_history",
    "tier_history_records",
]
