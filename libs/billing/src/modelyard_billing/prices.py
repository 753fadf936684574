"""The price list: per tier, the monthly base price, the tokens it includes, and the overage rate.

Defaults are the seed's tier ranges, each at the middle of its range: basic $50–100 → **$75**,
professional $300–600 → **$450**, enterprise $2,000–4,000 → **$3,000** a month.

*Included volume* is a number of **model tokens per month** (input plus output, every model, the
platform-paid calls only: a tenant's own endpoints are the tenant's bill). Queries are not the
measure because the tier's daily API-call quota already caps them; tokens are what a query costs.
Defaults: basic 2 M, professional 20 M, enterprise 200 M tokens; above it, **overage** per million
tokens: basic $4.00, professional $3.00, enterprise $2.00. Prices are integers in cents.

Operators replace the list with a JSON file (``MODELYARD_BILLING__PRICE_FILE``, the shape of
``PriceList``) or single values (``MODELYARD_BILLING__PRICES__TIERS__BASIC__BASE_CENTS=9900``); either
is laid over the defaults field by field, so it names only what it changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from modelyard_events import Tier
from modelyard_core.settings import per_tier_overrides
from pydantic import BaseModel, ConfigDict, Field, FilePath, field_validator, model_validator


class TierPrice(BaseModel):
    model_config = ConfigDict(frozen=True)

    base_cents: int = Field(ge=0, description="Monthly base price, in cents.")
    included_tokens: int = Field(ge=0, description="Model tokens (input + output) included per month.")
    overage_cents_per_million: int = Field(ge=0, description="Price of each million tokens above the included volume, in cents.")


DEFAULT_TIERS: dict[Tier, TierPrice] = {
    Tier.BASIC: TierPrice(base_cents=7_500, included_tokens=2_000_000, overage_cents_per_million=400),
    Tier.PROFESSIONAL: TierPrice(base_cents=45_000, included_tokens=20_000_000, overage_cents_per_million=300),
    Tier.ENTERPRISE: TierPrice(base_cents=300_000, included_tokens=200_000_000, overage_cents_per_million=200),
}


class PriceList(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str = Field(default="2026-11", description="Named on every report, so a report says which list priced it.")
    currency: str = Field(default="usd", pattern="^[a-z]{3}$", description="ISO 4217, lower case (as Stripe spells it).")
    tiers: dict[Tier, TierPrice] = Field(default_factory=lambda: dict(DEFAULT_TIERS))

    @field_validator("tiers", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        return per_tier_overrides(value, DEFAULT_TIERS)

    @model_validator(mode="after")
    def _every_tier_priced(self) -> PriceList:
        missing = [t.value for t in Tier if t not in self.tiers]
        if missing:
            raise ValueError(f"price list {self.version}: no price for tier(s) {', '.join(missing)}")
        return self

    def of(self, tier: Tier) -> TierPrice:
        return self.tiers[tier]


class BillingSettings(BaseModel):
    """``MODELYARD_BILLING__*``: the price list and the meter names of the payment-provider export."""

    prices: PriceList = Field(default_factory=PriceList)
    price_file: FilePath | None = Field(default=None, description="A JSON price list replacing `prices`.")
    #: Stripe meter event names by meter (each must be the `event_name` of a meter in the Stripe account).
    meters: dict[Literal["overage_tokens", "tokens", "queries"], str] = Field(default_factory=lambda: {
        "overage_tokens": "modelyard_overage_tokens", "tokens": "modelyard_tokens", "queries": "modelyard_queries"})

    def price_list(self) -> PriceList:
        if self.price_file is None:
            return self.prices
        return PriceList.model_validate(json.loads(Path(self.price_file).read_text()))
