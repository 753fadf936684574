"""The read side of the usage documents: what the tenant API, the CLI (`modelyard stats`) and the demo report.

Every function takes the database and returns plain dicts (JSON-ready). Savings are measured against
the counterfactual cost of the same queries on the standard LLM (``llm_cost_usd``). Sums are taken
over the documents' integer counters, so they are exact; money is converted to dollars last.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date

from pymongo.asynchronous.database import AsyncDatabase

from modelyard_core.store import TenantScoped

from .documents import AGENTS, DAILY, MONTHLY, TENANT_DAILY, add_counters, to_counters


def _summary(c: dict) -> dict:
    """Rates and money of summed integer counters (see ``fold``: nano-dollars, microseconds)."""
    u = to_counters(c)
    calls, queries = u.calls, u.queries
    cost, llm_cost = u.cost_usd, u.llm_cost_usd
    return {
        "queries": queries,
        "calls": calls,
        "slm_calls": u.slm_calls,
        "llm_calls": u.llm_calls,
        "completions": u.completions,
        "slm_share": round(u.slm_calls / calls, 4) if calls else 0.0,
        "cascade_steps": u.cascade_steps,
        "cascade_rate": round(u.cascade_steps / queries, 4) if queries else 0.0,
        "errors": u.errors,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cost_usd": round(cost, 9),
        "llm_only_cost_usd": round(llm_cost, 9),
        "savings_usd": round(llm_cost - cost, 9),
        "savings_pct": round(100 * (llm_cost - cost) / llm_cost, 2) if llm_cost else 0.0,
        "avg_latency_ms": round(u.latency_ms_sum / u.latency_count, 2) if u.latency_count else 0.0,
        "shadow": shadow_summary(u),
    }


def shadow_summary(u) -> dict:
    """Shadow evaluation: the share of compared small-model answers that agreed with the large model's (its
    "quality vs the large model"), with the sample size and a 95% Wilson interval; the shadow calls' cost
    (not billed: not in ``cost_usd``)."""
    n, agreed = u.shadow_compared, u.shadow_agreed
    low, high = wilson(agreed, n)
    return {
        "calls": u.shadow_calls,
        "compared": n,
        "agreed": agreed,
        "quality_vs_large": round(agreed / n, 4) if n else None,
        "ci95": [round(low, 4), round(high, 4)] if n else None,
        "cost_usd": round(u.shadow_cost_usd, 9),
        "input_tokens": u.shadow_input_tokens,
        "output_tokens": u.shadow_output_tokens,
    }


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion (95% by default); (0, 1) without observations."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - half) / denominator), min(1.0, (centre + half) / denominator)


def _add(into: dict, doc: dict) -> None:
    add_counters(into, doc)


def _range(start: date, end: date) -> dict:
    return {"day": {"$gte": start.isoformat(), "$lte": end.isoformat()}}


async def usage_metrics(db: AsyncDatabase, tenant_id: str, start: date, end: date) -> dict:
    """One tenant's usage in [start, end]: totals, per model and per day (the seed's get_usage_metrics)."""
    docs = await TenantScoped(db[DAILY], tenant_id).find(_range(start, end))
    total: dict = {}
    by_model: dict[str, dict] = defaultdict(dict)
    by_day: dict[str, dict] = defaultdict(dict)
    for doc in docs:
        _add(total, doc)
        _add(by_model[doc["model"]], doc)
        _add(by_day[doc["day"]], doc)
    return {
        "tenant_id": tenant_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "totals": _summary(total),
        "by_model": {m: _summary(c) for m, c in sorted(by_model.items())},
        "by_day": {d: _summary(c) for d, c in sorted(by_day.items())},
    }


async def routing_stats(db: AsyncDatabase, tenant_id: str | None, start: date, end: date) -> dict:
    """SLM/LLM split, cascade rate and savings against all-LLM, for one tenant (with its agents) or all."""
    flt = _range(start, end)
    if tenant_id is not None:
        docs = await TenantScoped(db[TENANT_DAILY], tenant_id).find(flt)
    else:
        docs = [d async for d in db[TENANT_DAILY].find(flt)]
    total: dict = {}
    for doc in docs:
        _add(total, doc)
    out = {"tenant_id": tenant_id, "start": start.isoformat(), "end": end.isoformat(), **_summary(total)}
    if tenant_id is not None:
        months = {"$gte": start.isoformat()[:7], "$lte": end.isoformat()[:7]}
        agents: dict[str, dict] = defaultdict(dict)
        for doc in await TenantScoped(db[AGENTS], tenant_id).find({"month": months}):
            _add(agents[doc["agent_id"]], doc)
        out["agents"] = {a: _summary(c) for a, c in sorted(agents.items())}
    return out


async def tenant_statistics(db: AsyncDatabase, start: date, end: date) -> dict:
    """Across all tenants (the seed's get_tenant_statistics): totals and one row per tenant."""
    per_tenant: dict[str, dict] = defaultdict(dict)
    async for doc in db[TENANT_DAILY].find(_range(start, end)):
        _add(per_tenant[doc["tenant_id"]], doc)
    total: dict = {}
    for c in per_tenant.values():
        _add(total, c)
    summary = _summary(total)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "total_tenants": len(per_tenant),
        "total_queries": summary["queries"],
        "total_cost_usd": summary["cost_usd"],
        "totals": summary,
        "tenants": [{"tenant_id": t, **_summary(c)} for t, c in sorted(per_tenant.items())],
    }


async def month_usage(db: AsyncDatabase, tenant_id: str, month: str) -> dict:
    """One tenant's monthly roll-up (``YYYY-MM``): what monthly budgets are measured against."""
    doc = await TenantScoped(db[MONTHLY], tenant_id).find_one({"month": month})
    return {"tenant_id": tenant_id, "month": month, **_summary(doc or {}),
            "alerted": sorted((doc or {}).get("alerted") or {})}


async def daily_documents(db: AsyncDatabase, first: date, last: date, tenant_id: str | None = None) -> list[dict]:
    """The per-(tenant, day, model) documents of [first, last] as stored (integer counters): what billing
    sums. One tenant's (scoped), or every tenant's."""
    flt = _range(first, last)
    if tenant_id is not None:
        return await TenantScoped(db[DAILY], tenant_id).find(flt)
    return [d async for d in db[DAILY].find(flt)]
