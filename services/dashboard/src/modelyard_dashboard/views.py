"""What each page shows, assembled from the tenant API's answers (no number is computed here that the
API does not give, except ratios of two of its numbers, e.g. a day's error rate = errors / calls).

``overview`` is the platform administrator's page, ``organisation`` one tenant's. Both return plain
dicts for the templates; the raw API answers travel along (``api``) so a template can show any
figure next to the path it came from.
"""

from __future__ import annotations

import asyncio

from . import charts
from .analytics import DayRange, cascade_band, day_rows, error_rate
from .charts import Series
from .client import TenantApi
from .formatting import count, ms, ratio, usd
from .quotas import fullest, gauges
from .session import Session

#: Organisations drawn in the overview's charts (all of them are in its table).
CHART_TENANTS = 8
HEALTHY_BAND = (0.05, 0.10, "healthy cascade rate: 5–10%")


def short(name: str, width: int = 12) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def label_width(bars: int) -> int:
    """Characters of a category label that fit under one of ``bars`` bars (11-pixel text)."""
    return max(6, min(24, int(charts.PLOT_W / max(bars, 1) / 6.5)))


def tier_label(tier: str) -> str:
    return tier.capitalize()


async def overview(api: TenantApi, session: Session, span: DayRange, quota_scan: int) -> dict:
    token = session.token
    tenants, stats, routing = await asyncio.gather(
        api.all_tenants(token), api.statistics(token, span.start, span.end), api.routing_statistics(token, span.start, span.end)
    )
    by_id = {t["tenant_id"]: t for t in tenants}
    scanned = tenants[:quota_scan]
    quotas = await api.quotas_of(token, [t["tenant_id"] for t in scanned])
    nearest = [(by_id[t], g) for t, g in fullest({t: gauges(q) for t, q in quotas.items()})]

    rows = sorted(stats["tenants"], key=lambda r: (-r["queries"], r["tenant_id"]))
    for row in rows:
        tenant = by_id.get(row["tenant_id"])
        row["name"] = tenant["organization_name"] if tenant else f"(deleted) {row['tenant_id'][:8]}"
        row["tier"] = tier_label(tenant["subscription_tier"]) if tenant else "–"
        row["band"] = cascade_band(row["cascade_rate"], row["queries"])
    drawn = rows[:CHART_TENANTS]
    names = [short(r["name"], label_width(len(drawn))) for r in drawn]
    return {
        "span": span,
        "tenants": tenants,
        "stats": stats,
        "routing": routing,
        "band": cascade_band(routing["cascade_rate"], routing["queries"]),
        "rows": rows,
        "nearest": nearest,
        "scanned": len(scanned),
        "cost_chart": charts.bar_chart(
            "cost-by-tenant", "Cost and all-LLM cost by organisation",
            f"Cost with routing against the cost of sending every query to the LLM, for the {len(drawn)} busiest organisations.",
            names, [Series("cost", [r["cost_usd"] for r in drawn], "c-cost"),
                    Series("all-LLM cost", [r["llm_only_cost_usd"] for r in drawn], "c-baseline")],
            usd, stacked=False, thin_labels=False),
        "split_chart": charts.bar_chart(
            "split-by-tenant", "Model calls by class and organisation",
            f"Small-model and large-model calls of the {len(drawn)} busiest organisations.",
            names, [Series("SLM calls", [r["slm_calls"] for r in drawn], "c-slm"),
                    Series("LLM calls", [r["llm_calls"] for r in drawn], "c-llm")],
            count, thin_labels=False),
    }


async def organisation(api: TenantApi, session: Session, tenant_id: str, span: DayRange) -> dict:
    token = session.token
    tenant, usage, routing, quotas, agents = await asyncio.gather(
        api.tenant(token, tenant_id), api.usage(token, tenant_id, span.start, span.end),
        api.routing_stats(token, tenant_id, span.start, span.end), api.quotas(token, tenant_id), api.agents(token, tenant_id),
    )
    days = day_rows(usage["by_day"], span)
    labels = [d.day[5:] for d in days]  # MM-DD
    totals = usage["totals"]
    agent_names = {a["agent_id"]: a["name"] for a in agents}
    models = [{"model": m, "klass": "SLM" if s["slm_calls"] >= s["llm_calls"] else "LLM", **s}
              for m, s in sorted(usage["by_model"].items(), key=lambda kv: -kv[1]["calls"])]
    agent_rows = [{"agent_id": a, "name": agent_names.get(a, a), **s}
                  for a, s in sorted(routing.get("agents", {}).items(), key=lambda kv: -kv[1]["queries"])]

    def daily(name: str, what: str, series: list[Series], fmt, kind: str = "bars", **extra):
        desc = f"{what} per day from {span.start} to {span.end}; the numbers are in the table “Per day”."
        if kind == "bars":
            return charts.bar_chart(name, what, desc, labels, series, fmt, **extra)
        return charts.line_chart(name, what, desc, labels, series, fmt, **extra)

    return {
        "span": span,
        "tenant": tenant,
        "tier": tier_label(tenant["subscription_tier"]),
        "usage": usage,
        "totals": totals,
        "routing": routing,
        "error_rate": error_rate(totals),
        "band": cascade_band(routing["cascade_rate"], routing["queries"]),
        "gauges": gauges(quotas),
        "quotas": quotas,
        "days": days,
        "models": models,
        "agents": agent_rows,
        "agent_months": (span.start.isoformat()[:7], span.end.isoformat()[:7]),
        "charts": {
            "calls": daily("calls-per-day", "Model calls by class", [
                Series("SLM calls", [d.get("slm_calls") for d in days], "c-slm"),
                Series("LLM calls", [d.get("llm_calls") for d in days], "c-llm")], count),
            "tokens": daily("tokens-per-day", "Tokens", [
                Series("input tokens", [d.get("input_tokens") for d in days], "c-input"),
                Series("output tokens", [d.get("output_tokens") for d in days], "c-output")], count),
            "cost": daily("cost-per-day", "Cost against the all-LLM baseline", [
                Series("all-LLM cost", [d.get("llm_only_cost_usd") for d in days], "c-baseline"),
                Series("cost", [d.get("cost_usd") for d in days], "c-cost")], usd, kind="line"),
            "latency": daily("latency-per-day", "Average latency", [
                Series("average latency", [d.get("avg_latency_ms") if d.metered else None for d in days], "c-latency")],
                ms, kind="line"),
            "errors": daily("errors-per-day", "Error rate", [
                Series("error rate", [d.error_rate if d.metered else None for d in days], "c-error")], ratio, kind="line",
                floor_top=0.01),
            "cascade": daily("cascade-per-day", "Cascade rate", [
                Series("cascade rate", [d.get("cascade_rate") if d.metered else None for d in days], "c-cascade")], ratio,
                kind="line", band=HEALTHY_BAND),
            "split": charts.share_bar("class-split", "Model calls by class", [
                ("SLM calls", routing["slm_calls"], "c-slm"), ("LLM calls", routing["llm_calls"], "c-llm")], count),
            "models": charts.bar_chart(
                "calls-by-model", "Model calls by model", "Calls per model in the range; the numbers are in the table beside.",
                [short(m["model"], label_width(len(models))) for m in models], [Series("calls", [m["calls"] for m in models], "c-model")], count,
                thin_labels=False),
        },
    }
