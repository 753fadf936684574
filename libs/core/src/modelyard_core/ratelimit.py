"""Per-tenant request and token rates by tier: the limits (configuration) and the decision (plain code).

Each limit is a GCRA (the generic cell rate algorithm, a token bucket kept as one number): the state is
the *theoretical arrival time* (TAT) of the tenant's next unit, in microseconds. A request of ``cost``
units at time ``t`` moves it to ``max(TAT, t) + cost × interval`` (interval = one minute / rate) and is
allowed if that is at most one minute ahead of ``t`` — so a whole minute's allowance may come at once,
and after that the rate. A refused request changes nothing and learns how long until it would pass.

Time is the query's own submission time, not the clock of whoever decides: the router decides a
tenant's queries in partition order from state it stores with the partition's admission counts, so a
redelivered batch, another router replica or a restarted one reaches exactly the same decisions.

Tokens are counted as OpenAI counts them for rate limits, before the answer exists: the prompt's
estimated tokens (characters / ``chars_per_token``, history included) plus the answer's allowance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from modelyard_events import Tier
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .settings import per_tier_overrides

MINUTE_US = 60_000_000


class TierRate(BaseModel):
    model_config = ConfigDict(frozen=True)

    requests_per_minute: int = Field(ge=1)
    tokens_per_minute: int = Field(ge=1)


#: Defaults: bursts a daily quota's worth of queries may make (the demo's 900 queries of a basic tenant
#: at once pass), and token rates that stop a flood of long prompts.
DEFAULT_RATES: dict[Tier, TierRate] = {
    Tier.BASIC: TierRate(requests_per_minute=1_000, tokens_per_minute=1_000_000),
    Tier.PROFESSIONAL: TierRate(requests_per_minute=5_000, tokens_per_minute=5_000_000),
    Tier.ENTERPRISE: TierRate(requests_per_minute=20_000, tokens_per_minute=20_000_000),
}


class RateLimitSettings(BaseModel):
    """``MODELYARD_RATE_LIMITS__*``, e.g. ``MODELYARD_RATE_LIMITS__TIERS__BASIC__REQUESTS_PER_MINUTE=120``."""

    enabled: bool = True
    tiers: dict[Tier, TierRate] = Field(default_factory=lambda: dict(DEFAULT_RATES))

    @field_validator("tiers", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        return per_tier_overrides(value, DEFAULT_RATES)
    #: Tokens a request is charged for its answer before the answer exists.
    answer_allowance_tokens: int = Field(default=256, ge=0)
    chars_per_token: int = Field(default=4, ge=1)

    def rate(self, tier: Tier) -> TierRate:
        return self.tiers.get(tier) or DEFAULT_RATES[tier]

    def tokens_of(self, texts: list[str]) -> int:
        return sum(math.ceil(len(t) / self.chars_per_token) for t in texts) + self.answer_allowance_tokens


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    #: The state after the request (unchanged when refused).
    tat_requests_us: int
    tat_tokens_us: int
    #: Refused: which limit ("requests" or "tokens") and how long until the request would pass.
    limit: str | None = None
    retry_after_us: int = 0

    @property
    def retry_after_s(self) -> float:
        return self.retry_after_us / 1_000_000


def _gcra(tat_us: int, at_us: int, cost: int, per_minute: int) -> tuple[int, int]:
    """(the TAT if the request is admitted, microseconds until it could be: 0 when it can now)."""
    start = max(tat_us, at_us)
    new = start + -(-MINUTE_US * cost // per_minute)  # ceil: never more than the rate
    if new - at_us <= MINUTE_US or start == at_us:  # within a minute's burst, or the bucket is empty
        return new, 0
    # It passes once enough has drained, or (a request above a minute's allowance) once all has.
    return new, min(new - at_us - MINUTE_US, start - at_us)


def decide(tat_requests_us: int, tat_tokens_us: int, at_us: int, tokens: int, rate: TierRate) -> RateDecision:
    """One request at ``at_us`` costing ``tokens``, against both of the tier's limits (both or neither
    are charged). A request larger than a minute's tokens passes only when the tenant's bucket is empty."""
    new_req, wait_req = _gcra(tat_requests_us, at_us, 1, rate.requests_per_minute)
    new_tok, wait_tok = _gcra(tat_tokens_us, at_us, tokens, rate.tokens_per_minute)
    if wait_req or wait_tok:
        limit = "requests" if wait_req >= wait_tok else "tokens"
        return RateDecision(False, tat_requests_us, tat_tokens_us, limit, max(wait_req, wait_tok))
    return RateDecision(True, new_req, new_tok)
