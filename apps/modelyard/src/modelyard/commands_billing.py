"""Billing commands: `modelyard billing report|close|export|customer`.

They read and write the same database as the tenant API (``MODELYARD_MONGO__*``) with the same price
list (``MODELYARD_BILLING__*``), through ``modelyard_billing``; `close` and `export --kafka` publish to
the deployment's Kafka (``MODELYARD_KAFKA__*``).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

MonthOption = Annotated[str, typer.Option("--month", help="Calendar month (UTC), YYYY-MM, e.g. 2026-11.")]
TenantOption = Annotated[list[str] | None, typer.Option("--tenant", help="Only this tenant (repeatable); default: every tenant.")]


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    billing_app = typer.Typer(no_args_is_help=True, help="Monthly billing reports, the monthly close, the payment-provider export.")
    app.add_typer(billing_app, name="billing")

    @billing_app.command("report")
    def report(month: MonthOption, tenant: TenantOption = None,
               fmt: Annotated[Format, typer.Option("--format", help="table, csv (one row per tenant) or json.")] = Format.table) -> None:
        """Each tenant's report of a month: base price by tier period, usage by class and model, overage, savings."""
        reports = _run(lambda ctx: ctx.billing.reports(_parse(month), tenant))
        typer.echo(render(reports, month, fmt), nl=False)

    @billing_app.command("close")
    def close(month: MonthOption, tenant: TenantOption = None) -> None:
        """Freeze a month's reports (only once it is over); run again, record late usage as adjustment lines."""
        from modelyard_billing import MonthNotOver

        try:
            results = _run(lambda ctx: ctx.billing.close(_parse(month), tenant_ids=tenant), with_bus=True)
        except MonthNotOver as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        for r in results:
            typer.echo(f"{r.tenant_id}  {r.outcome:<9}  {r.total_cents / 100:>12,.2f}" + (f"  {r.adjustment_id}" if r.adjustment_id else ""))
        typer.echo(json.dumps({"month": month, "closed": sum(r.outcome == "closed" for r in results),
                               "adjusted": sum(r.outcome == "adjusted" for r in results),
                               "unchanged": sum(r.outcome == "unchanged" for r in results)}))

    @billing_app.command("customer")
    def customer(tenant: Annotated[str, typer.Option("--tenant", help="The tenant id.")],
                 stripe_customer: Annotated[str, typer.Option("--stripe-customer", help="Its Stripe customer id (cus_...).")]) -> None:
        """Set a tenant's customer id at the payment provider (the stripe_customer_id of its meter events)."""
        from modelyard_billing.service import utcnow

        _run(lambda ctx: ctx.billing.store.set_customer_id(tenant, stripe_customer, utcnow()))
        typer.echo(f"{tenant} -> {stripe_customer}")

    _register_export(billing_app)
    register_benches(bench_app)


def _register_export(billing_app: typer.Typer) -> None:
    @billing_app.command("export")
    def export(month: MonthOption,
               out: Annotated[Path | None, typer.Option("--out", help="Write the meter events here (JSON Lines, one Stripe "
                                                        "request's parameters per line); '-' for stdout.")] = None,
               kafka: Annotated[bool, typer.Option("--kafka", help="Publish them on billing.meter_events too.")] = False,
               all_events: Annotated[bool, typer.Option("--all", help="Every meter event of the month, already exported ones "
                                                        "included (same identifiers: the provider drops repeats).")] = False) -> None:
        """Stripe Billing meter events of a closed month (and its adjustments): each exported once."""
        from modelyard_billing.export import Exporter

        from modelyard_billing.export import stripe_params

        async def run(ctx: Context) -> Any:
            exporter = Exporter(ctx.billing, ctx.settings.billing.meters, bus=ctx.bus)
            result = await exporter.export(_parse(month), include_exported=all_events)
            lines = "".join(json.dumps(stripe_params(e), sort_keys=True) + "\n" for e in result.events)
            if out is not None and str(out) == "-":
                sys.stdout.write(lines)
            elif out is not None:
                out.write_text(lines)
            await exporter.commit(result)  # only once the file is written and Kafka acknowledged every event
            return result

        result = _run(run, with_bus=kafka)
        typer.echo(json.dumps(result.summary()), err=out is not None and str(out) == "-")


# ---------------------------------------------------------------------------------------------------


def _parse(month: str) -> Any:
    from modelyard_billing import InvalidMonth, Month

    try:
        return Month.parse(month)
    except InvalidMonth as exc:
        raise typer.BadParameter(str(exc), param_hint="--month") from None


@dataclass
class Context:
    billing: Any  # modelyard_billing.Billing
    bus: Any  # modelyard_core.bus.Bus, or None
    settings: Any


def _run(action: Callable[[Context], Any], *, with_bus: bool = False) -> Any:
    async def main() -> Any:
        async with _billing(with_bus) as ctx:
            return await action(ctx)

    return asyncio.run(main())


@asynccontextmanager
async def _billing(with_bus: bool) -> AsyncIterator[Context]:
    from modelyard_billing import Billing, BillingSettings
    from modelyard_core.bus import Bus
    from modelyard_core.settings import Settings
    from modelyard_core.store import database, make_mongo
    from pydantic import Field

    class BillingCommandSettings(Settings):
        billing: BillingSettings = Field(default_factory=BillingSettings)

    settings = BillingCommandSettings()
    mongo = make_mongo(settings.mongo, app_name="modelyard-billing")
    bus = Bus(settings, "billing") if with_bus else None
    try:
        if bus is not None:
            await bus.ensure_topics([settings.topics.name("billing_statements"), settings.topics.name("meter_events")])
            await bus.broker.start()
        billing = Billing(database(mongo, settings.mongo), settings.billing.price_list(), bus=bus)
        await billing.store.ensure_indexes()
        yield Context(billing, bus, settings)
    finally:
        if bus is not None:
            await bus.broker.stop()
        await mongo.close()


# ---------------------------------------------------------------------------------------------------
# Rendering


CSV_COLUMNS = ("tenant_id", "organization_name", "month", "status", "tier_periods", "base_cents", "queries", "calls", "tokens",
               "billable_tokens", "included_tokens", "overage_tokens", "overage_cents", "adjustments_cents", "total_cents",
               "pending_adjustment_cents", "model_cost_nusd", "llm_only_cost_nusd", "savings_nusd", "savings_pct",
               "slm_queries", "llm_queries", "llm_plus_queries", "currency", "price_list_version")


def csv_row(r: Any) -> dict[str, Any]:
    u = r.usage
    return {
        "tenant_id": r.tenant_id, "organization_name": r.organization_name, "month": r.month, "status": r.status.value,
        "tier_periods": " ".join(f"{p.tier.value}:{p.first_day.day}-{p.last_day.day}" for p in r.tier_periods),
        "base_cents": r.base_cents, "queries": u.queries, "calls": u.calls, "tokens": u.tokens,
        "billable_tokens": r.billable_tokens, "included_tokens": r.included_tokens, "overage_tokens": r.overage_tokens,
        "overage_cents": r.overage_cents, "adjustments_cents": sum(a.amount_cents for a in r.adjustments),
        "total_cents": r.total_cents,
        "pending_adjustment_cents": r.pending_adjustment.amount_cents if r.pending_adjustment else 0,
        "model_cost_nusd": u.model_cost_nusd, "llm_only_cost_nusd": u.llm_only_cost_nusd, "savings_nusd": u.savings_nusd,
        "savings_pct": u.savings_pct,
        **{f"{c}_queries": r.by_class[c].queries if c in r.by_class else 0 for c in ("slm", "llm", "llm_plus")},
        "currency": r.currency, "price_list_version": r.price_list_version,
    }


def render(reports: list, month: str, fmt: Format) -> str:
    if fmt is Format.json:
        return json.dumps({"month": month, "reports": [r.model_dump(mode="json") for r in reports]}, indent=2) + "\n"
    if fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in reports:
            writer.writerow(csv_row(r))
        return buf.getvalue()
    return _tables(reports, month)


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def _usd_nano(nusd: int) -> str:
    return f"${nusd / 1e9:,.4f}"


def _tables(reports: list, month: str) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=io.StringIO(), width=160, force_terminal=False)
    summary = Table(title=f"Billing {month}: {len(reports)} tenants (amounts in {reports[0].currency.upper() if reports else 'USD'})",
                    title_justify="left")
    for col in ("tenant", "status", "tier periods", "base", "queries", "tokens", "included", "overage tokens", "overage",
                "adjustments", "total", "model cost", "savings"):
        summary.add_column(col, justify="left" if col in ("tenant", "status", "tier periods") else "right")
    for r in reports:
        summary.add_row(f"{r.organization_name or r.tenant_id}\n{r.tenant_id}", r.status.value,
                        ", ".join(f"{p.tier.value} {p.days}d" for p in r.tier_periods) or "-", _money(r.base_cents),
                        f"{r.usage.queries:,}", f"{r.usage.tokens:,}", f"{r.included_tokens:,}", f"{r.overage_tokens:,}",
                        _money(r.overage_cents), _money(sum(a.amount_cents for a in r.adjustments))
                        + (f"\n(+{_money(r.pending_adjustment.amount_cents)} pending)" if r.pending_adjustment else ""),
                        _money(r.total_cents), _usd_nano(r.usage.model_cost_nusd),
                        f"{_usd_nano(r.usage.savings_nusd)} ({r.usage.savings_pct:.1f}%)")
    console.print(summary)
    if len(reports) == 1:
        r = reports[0]
        detail = Table(title="by model", title_justify="left")
        for col in ("model", "class", "queries", "calls", "tokens in/out", "model cost", "all-LLM cost", "savings"):
            detail.add_column(col, justify="left" if col in ("model", "class") else "right")
        for m in r.by_model:
            detail.add_row(m.model, m.model_class.value, f"{m.queries:,}", f"{m.calls:,}", f"{m.input_tokens:,} / {m.output_tokens:,}",
                           _usd_nano(m.model_cost_nusd), _usd_nano(m.llm_only_cost_nusd), _usd_nano(m.savings_nusd))
        console.print(detail)
    return console.file.getvalue()


def register_benches(bench_app: typer.Typer) -> None:
    @bench_app.command("billing")
    def bench_billing(tenants: Annotated[int, typer.Option(min=1)] = 1_000,
                      month: Annotated[str, typer.Option(help="The month the usage is in (default: last month).")] = "") -> None:
        """Report generation for N tenants (a scratch database on MODELYARD_MONGO__URL, dropped afterwards)."""
        from datetime import UTC, datetime

        from modelyard_billing import Month
        from modelyard_core.settings import Settings

        from .bench.saas import bench_billing as run

        chosen = Month.parse(month) if month else Month.of(datetime.now(UTC)).previous()
        typer.echo(json.dumps(asyncio.run(run(Settings(), tenants, chosen))))

    @bench_app.command("ratelimit")
    def bench_ratelimit(decisions: Annotated[int, typer.Option(min=1_000)] = 200_000) -> None:
        """The cost of a rate decision, and of the router's admission of a record with and without it (CPU only)."""
        from .bench.saas import bench_ratelimit as run

        typer.echo(json.dumps(run(decisions)))

    @bench_app.command("webhooks")
    def bench_webhooks(events: Annotated[int, typer.Option(min=1)] = 200,
                       kafka: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_KAFKA")] = "127.0.0.1:9092",
                       mongo_url: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_MONGO_URL")] = "mongodb://127.0.0.1:27017") -> None:
        """Webhook delivery latency (publish → verified receipt), p50/p99, with a dispatcher process of its own."""
        from pathlib import Path

        from .bench.saas import bench_webhooks as run

        log_dir = Path.cwd() / ".run" / "bench-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        typer.echo(json.dumps(asyncio.run(run(kafka, mongo_url, events, log_dir))))
