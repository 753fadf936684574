"""A tenant's monthly report, as plain code: price list + tier history + usage documents → lines.

``build_report`` reads nothing: it is given the month's per-(day, model) usage documents (metering's
``usage_daily``, integer counters) and sums them, so a report's usage totals equal the documents'
sums by construction. Money follows ``money``: cents for charges, nano-dollars for model cost.

Lines of a report:

* one **base** line per tier period (``months.tier_periods``): the tier's base price × days / days
  in the month;
* **included tokens**, prorated the same way per period;
* **overage**: tokens above the included volume, at the rate of the tier of the month's last billed
  day (the tier the tenant ended the month on);
* on a closed month, **adjustments**: usage that arrived after the close (see ``settle``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import StrEnum

from modelyard_events import ModelClass, Tier
from pydantic import BaseModel, Field

from .money import per_million, prorate
from .months import Month, TierChange, tier_periods
from .prices import PriceList

#: Counters of a usage document a report sums (integers; see ``modelyard_usage.DOC_COUNTERS``).
SUMMED = ("queries", "calls", "cascade_steps", "errors", "input_tokens", "output_tokens", "cost_nusd", "llm_cost_nusd",
          "tenant_paid_calls", "tenant_paid_tokens")


class UsageLine(BaseModel):
    queries: int = 0
    calls: int = 0
    cascade_steps: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tokens: int = 0
    model_cost_nusd: int = Field(default=0, description="What the calls cost (nano-USD), as metered.")
    llm_only_cost_nusd: int = Field(default=0, description="What the same queries would have cost on the standard LLM.")
    savings_nusd: int = Field(default=0, description="llm_only_cost_nusd - model_cost_nusd: what routing saved.")
    savings_pct: float = 0.0
    tenant_paid_calls: int = Field(default=0, description="Calls to the tenant's own endpoints (billed by its provider).")
    tenant_paid_tokens: int = 0

    @classmethod
    def of(cls, sums: dict[str, int]) -> UsageLine:
        tokens = sums.get("input_tokens", 0) + sums.get("output_tokens", 0)
        cost, llm = sums.get("cost_nusd", 0), sums.get("llm_cost_nusd", 0)
        return cls(queries=sums.get("queries", 0), calls=sums.get("calls", 0), cascade_steps=sums.get("cascade_steps", 0),
                   errors=sums.get("errors", 0), input_tokens=sums.get("input_tokens", 0),
                   output_tokens=sums.get("output_tokens", 0), tokens=tokens, model_cost_nusd=cost,
                   llm_only_cost_nusd=llm, savings_nusd=llm - cost, savings_pct=round(100 * (llm - cost) / llm, 2) if llm else 0.0,
                   tenant_paid_calls=sums.get("tenant_paid_calls", 0), tenant_paid_tokens=sums.get("tenant_paid_tokens", 0))

    @property
    def billable_tokens(self) -> int:
        """Tokens the platform paid for: what the included volume and the overage are measured in."""
        return self.tokens - self.tenant_paid_tokens


class ModelUsage(UsageLine):
    model: str
    model_class: ModelClass


class TierLine(BaseModel):
    tier: Tier
    first_day: date
    last_day: date
    days: int
    base_cents: int
    included_tokens: int


class UsageDelta(BaseModel):
    """What the usage of a closed month grew by (an adjustment's reason)."""

    queries: int = 0
    calls: int = 0
    tokens: int = 0
    billable_tokens: int = 0
    model_cost_nusd: int = 0


class Adjustment(BaseModel):
    adjustment_id: str | None = Field(description="Null while pending: recorded by the next close run.")
    recorded_at: datetime | None = None
    reason: str = "usage metered after the month was closed"
    usage: UsageDelta
    overage_tokens: int = Field(description="Change of the overage tokens.")
    amount_cents: int = Field(description="Change of the amount due (overage at the closed report's rate).")


class ReportStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class MonthReport(BaseModel):
    tenant_id: str
    organization_name: str = ""
    month: str
    status: ReportStatus = ReportStatus.OPEN
    generated_at: datetime
    closed_at: datetime | None = None
    currency: str
    price_list_version: str
    days_in_month: int
    tier_periods: list[TierLine]
    base_cents: int
    usage: UsageLine
    by_class: dict[ModelClass, UsageLine]
    by_model: list[ModelUsage]
    included_tokens: int
    billable_tokens: int
    overage_tokens: int
    overage_rate_cents_per_million: int
    overage_cents: int
    adjustments: list[Adjustment] = Field(default_factory=list, description="Recorded after the close, each once.")
    pending_adjustment: Adjustment | None = Field(default=None, description="Usage metered after the close and not "
                                                  "yet recorded; a close run records it. Not part of the total.")
    total_cents: int = Field(description="base + overage + recorded adjustments.")


def _sum(docs: Iterable[dict], key) -> dict:
    sums: dict = defaultdict(lambda: defaultdict(int))
    for doc in docs:
        into = sums[key(doc)]
        for name in SUMMED:
            into[name] += doc.get(name, 0)
    return sums


def build_report(*, tenant_id: str, organization_name: str, month: Month, history: Sequence[TierChange],
                 usage_docs: Sequence[dict], prices: PriceList, now: datetime) -> MonthReport:
    """The open report of ``month`` (the documents must be the tenant's ``usage_daily`` ones of the month)."""
    periods = tier_periods(history, month)
    lines = []
    for p in periods:
        price = prices.of(p.tier)
        lines.append(TierLine(tier=p.tier, first_day=p.first_day, last_day=p.last_day, days=p.days,
                              base_cents=prorate(price.base_cents, p.days, month.days),
                              included_tokens=prorate(price.included_tokens, p.days, month.days)))
    total = UsageLine.of(_sum(usage_docs, lambda d: "all").get("all", {}))
    by_class = {ModelClass(c): UsageLine.of(s) for c, s in sorted(_sum(usage_docs, lambda d: d["model_class"]).items())}
    by_model = [ModelUsage(model=m, model_class=ModelClass(c), **UsageLine.of(s).model_dump())
                for (m, c), s in sorted(_sum(usage_docs, lambda d: (d["model"], d["model_class"])).items())]
    included = sum(line.included_tokens for line in lines)
    rate = prices.of(periods[-1].tier).overage_cents_per_million if periods else 0
    overage = max(0, total.billable_tokens - included)
    base = sum(line.base_cents for line in lines)
    overage_cents = per_million(overage, rate)
    return MonthReport(
        tenant_id=tenant_id, organization_name=organization_name, month=str(month), generated_at=now,
        currency=prices.currency, price_list_version=prices.version, days_in_month=month.days, tier_periods=lines,
        base_cents=base, usage=total, by_class=by_class, by_model=by_model, included_tokens=included,
        billable_tokens=total.billable_tokens, overage_tokens=overage, overage_rate_cents_per_million=rate,
        overage_cents=overage_cents, total_cents=base + overage_cents,
    )


def settle(frozen: MonthReport, recorded: Sequence[Adjustment], live: MonthReport) -> Adjustment | None:
    """What ``live`` usage adds to the closed report ``frozen`` and the adjustments already ``recorded``;
    None when nothing changed. The overage is re-priced at the closed report's rate and included volume."""
    billed_usage = UsageDelta(queries=frozen.usage.queries, calls=frozen.usage.calls, tokens=frozen.usage.tokens,
                              billable_tokens=frozen.billable_tokens, model_cost_nusd=frozen.usage.model_cost_nusd)
    billed_overage_tokens = frozen.overage_tokens + sum(a.overage_tokens for a in recorded)
    billed_cents = frozen.overage_cents + sum(a.amount_cents for a in recorded)
    for a in recorded:
        billed_usage = UsageDelta(**{k: getattr(billed_usage, k) + getattr(a.usage, k) for k in UsageDelta.model_fields})
    now_usage = UsageDelta(queries=live.usage.queries, calls=live.usage.calls, tokens=live.usage.tokens,
                           billable_tokens=live.billable_tokens, model_cost_nusd=live.usage.model_cost_nusd)
    delta = UsageDelta(**{k: getattr(now_usage, k) - getattr(billed_usage, k) for k in UsageDelta.model_fields})
    if not any(getattr(delta, k) for k in UsageDelta.model_fields):
        return None
    overage_tokens = max(0, now_usage.billable_tokens - frozen.included_tokens)
    overage_cents = per_million(overage_tokens, frozen.overage_rate_cents_per_million)
    return Adjustment(adjustment_id=None, usage=delta, overage_tokens=overage_tokens - billed_overage_tokens,
                      amount_cents=overage_cents - billed_cents)
