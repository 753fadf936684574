"""Synthetic usage streams and their exact expected totals (the metering benchmark and tests share them)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from modelyard_events import ModelClass, UsageRecorded
from modelyard_usage import DAILY, nano_usd
from pymongo.asynchronous.database import AsyncDatabase

#: (model, class, USD per input token, USD per output token): plausible list prices.
MODELS = (
    ("gpt-4o-mini", ModelClass.SLM, 0.15e-6, 0.60e-6),
    ("gpt-4o", ModelClass.LLM, 2.50e-6, 10.0e-6),
    ("gpt-4-turbo", ModelClass.LLM_PLUS, 10.0e-6, 30.0e-6),
)
_STANDARD_LLM = MODELS[1]


def _price(model: tuple, tokens_in: int, tokens_out: int) -> float:
    return tokens_in * model[2] + tokens_out * model[3]


def synthetic_usage(n: int, tenants: list[str], *, seed: int = 0, when: datetime | None = None,
                    agents_per_tenant: int = 3) -> list[UsageRecorded]:
    """``n`` model calls across ``tenants``: mostly SLM, some escalated (a second, cascade-step call)."""
    rng = random.Random(seed)
    when = when or datetime.now(UTC)
    out: list[UsageRecorded] = []
    q = 0
    while len(out) < n:
        tenant = tenants[q % len(tenants)]
        q += 1
        query_id = f"{tenant}-{seed}-{q}"
        agent = f"agent-{rng.randrange(agents_per_tenant)}" if agents_per_tenant and rng.random() < 0.8 else None
        tokens_in, tokens_out = rng.randint(20, 2_000), rng.randint(5, 800)
        first = MODELS[0] if rng.random() < 0.7 else MODELS[rng.randint(1, 2)]
        steps = [first]
        if first is MODELS[0] and rng.random() < 0.2 and len(out) + 2 <= n:
            steps.append(_STANDARD_LLM)  # escalated: the LLM answers again
        for i, model in enumerate(steps):
            error = "backend timeout" if rng.random() < 0.01 else None
            out.append(UsageRecorded(
                tenant_id=tenant, query_id=query_id, model=model[0], model_class=model[1], agent_id=agent,
                input_tokens=tokens_in, output_tokens=0 if error else tokens_out,
                cost_usd=0.0 if error else _price(model, tokens_in, tokens_out),
                llm_cost_usd=_price(_STANDARD_LLM, tokens_in, tokens_out),
                latency_ms=round(rng.lognormvariate(5, 0.8), 3), cascade_step=i > 0, error=error, time=when,
            ))
    return out


def expected_totals(events: Iterable[UsageRecorded]) -> dict[str, dict[str, int]]:
    """Per tenant: calls, queries, tokens and nano-dollars, each unique event id counted once."""
    unique = {e.event_id: e for e in events}
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict(calls=0, queries=0, tokens=0, cost_nusd=0))
    for e in unique.values():
        t = totals[e.tenant_id]
        t["calls"] += 1
        t["queries"] += 0 if e.cascade_step else 1
        t["tokens"] += e.input_tokens + e.output_tokens
        t["cost_nusd"] += nano_usd(e.cost_usd)
    return dict(totals)


async def stored_totals(db: AsyncDatabase, tenants: list[str], collection: str = DAILY) -> dict[str, dict[str, int]]:
    """The same figures as ``expected_totals``, summed from one usage collection."""
    totals: dict[str, dict[str, int]] = {}
    async for doc in db[collection].find({"tenant_id": {"$in": tenants}}):
        t = totals.setdefault(doc["tenant_id"], dict(calls=0, queries=0, tokens=0, cost_nusd=0))
        t["calls"] += doc.get("calls", 0)
        t["queries"] += doc.get("queries", 0)
        t["tokens"] += doc.get("input_tokens", 0) + doc.get("output_tokens", 0)
        t["cost_nusd"] += doc.get("cost_nusd", 0)
    return totals
