"""The read side of metering: what the tenant API, the CLI (`modelyard stats`) and the demo report.

Every function takes the database and returns plain dicts (JSON-ready). Savings are measured against
the counterfactual cost of the same calls' tokens on the standard LLM (``llm_cost_usd``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from pymongo.asynchronous.database import AsyncDatabase

from modelyard_core.store import TenantScoped

from .fold import COUNTER_FIELDS
from .sink import AGENTS, DAILY, TENANT_DAILY


def _summary(c: dict) -> dict:
    calls = c.get("calls", 0)
    queries = c.get("queries", 0)
    cost = c.get("cost_usd", 0.0)
    llm_cost = c.get("llm_cost_usd", 0.0)
    latency_count = c.get("latency_count", 0)
    return {
        "queries": int(queries),
        "calls": int(calls),
        "slm_calls": int(c.get("slm_calls", 0)),
        "llm_calls": int(c.get("llm_calls", 0)),
        "slm_share": round(c.get("slm_calls", 0) / calls, 4) if calls else 0.0,
        "cascade_steps": int(c.get("cascade_steps", 0)),
        "cascade_rate": round(c.get("cascade_steps", 0) / queries, 4) if queries else 0.0,
        "errors": int(c.get("errors", 0)),
        "input_tokens": int(c.get("input_tokens", 0)),
        "output_tokens": int(c.get("output_tokens", 0)),
        "cost_usd": round(cost, 6),
        "llm_only_cost_usd": round(llm_cost, 6),
        "savings_usd": round(llm_cost - cost, 6),
        "savings_pct": round(100 * (llm_cost - cost) / llm_cost, 2) if llm_cost else 0.0,
        "avg_latency_ms": round(c.get("latency_ms_sum", 0.0) / latency_count, 2) if latency_count else 0.0,
    }


def _add(into: dict, doc: dict) -> None:
    for k in COUNTER_FIELDS:
        into[k] = into.get(k, 0) + doc.get(k, 0)


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
