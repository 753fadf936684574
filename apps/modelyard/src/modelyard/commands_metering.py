"""Metering commands: `modelyard stats`, `modelyard tail metering`, `modelyard bench metering`.

Each reads its endpoints from the same settings as the services (``MODELYARD_*``); the heavy
imports stay inside the commands.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command()
    def stats(
        tenant: Annotated[str | None, typer.Option(help="One tenant (usage by model and day, agents); default: all.")] = None,
        days: Annotated[int, typer.Option(min=1, max=366, help="Period: the last N days, today included (UTC).")] = 30,
    ) -> None:
        """Usage, routing and savings statistics from the usage documents, as tables."""
        from rich.console import Console

        asyncio.run(_stats(Console(), tenant, days))

    tail_app = _group(app, "tail", "Follow a topic live, as a table (Ctrl-C stops).")

    @tail_app.command("metering")
    def tail_metering(
        max_messages: Annotated[int, typer.Option("--max", min=0, help="Stop after N messages (0: run until Ctrl-C).")] = 0,
        from_beginning: Annotated[bool, typer.Option(help="Start at the topic's beginning instead of its end.")] = False,
        rows: Annotated[int, typer.Option(min=1, help="Messages kept on screen.")] = 20,
    ) -> None:
        """metering.usage as it is published: per tenant-day, what each flush added and the new totals."""
        from rich.console import Console

        try:
            asyncio.run(_tail(Console(), max_messages, from_beginning, rows))
        except KeyboardInterrupt:
            pass

    @bench_app.command("metering")
    def bench_metering(
        events: Annotated[int, typer.Option(min=1, help="Usage events to publish.")] = 100_000,
        tenants: Annotated[int, typer.Option(min=1)] = 50,
        naive_events: Annotated[int, typer.Option(min=1, help="Sample for the naive one-update-per-event path.")] = 2_000,
        timeout_s: Annotated[float, typer.Option(min=1)] = 600.0,
    ) -> None:
        """Usage events folded per second by the running metering service (exact?), against a naive sink."""
        from rich.console import Console

        result = asyncio.run(_bench(Console(), events, tenants, naive_events, timeout_s))
        typer.echo(json.dumps(result))


def _group(app: typer.Typer, name: str, help_text: str) -> typer.Typer:
    """The sub-command group ``name`` (shared with other areas that add to it), created if needed."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    group = typer.Typer(no_args_is_help=True, help=help_text)
    app.add_typer(group, name=name)
    return group


# ---------------------------------------------------------------------------------------------------
# stats


def _usd(x: float) -> str:
    return f"${x:,.4f}"


def _summary_columns(table: Any) -> None:
    for col in ("queries", "calls", "SLM share", "cascade rate", "tokens in/out", "cost", "all-LLM cost", "savings", "avg latency"):
        table.add_column(col, justify="right")


def _summary_cells(s: dict) -> list[str]:
    return [
        f"{s['queries']:,}", f"{s['calls']:,}", f"{100 * s['slm_share']:.1f}%", f"{100 * s['cascade_rate']:.1f}%",
        f"{s['input_tokens']:,} / {s['output_tokens']:,}", _usd(s["cost_usd"]), _usd(s["llm_only_cost_usd"]),
        f"{_usd(s['savings_usd'])} ({s['savings_pct']:.1f}%)", f"{s['avg_latency_ms']:.0f} ms",
    ]


def _table(title: str, first: str) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(first)
    _summary_columns(table)
    return table


async def _stats(console: Any, tenant: str | None, days: int) -> None:
    from modelyard_core.store import database, make_mongo
    from modelyard_usage import read
    from modelyard_metering.settings import MeteringSettings

    settings = MeteringSettings()
    end = datetime.now(UTC).date()
    start = end - timedelta(days=days - 1)
    mongo = make_mongo(settings.mongo, app_name="modelyard-stats")
    db = database(mongo, settings.mongo)
    period = f"{start.isoformat()} .. {end.isoformat()}"
    try:
        if tenant is None:
            stats = await read.tenant_statistics(db, start, end)
            routing = await read.routing_stats(db, None, start, end)
            table = _table(f"All tenants, {period}: {stats['total_tenants']} tenants, {stats['total_queries']:,} queries, "
                           f"{_usd(stats['total_cost_usd'])}", "tenant")
            for row in stats["tenants"]:
                table.add_row(row["tenant_id"], *_summary_cells(row))
            table.add_section()
            table.add_row("[bold]all[/bold]", *_summary_cells(routing))
            console.print(table)
            return
        usage = await read.usage_metrics(db, tenant, start, end)
        routing = await read.routing_stats(db, tenant, start, end)
        by_model = _table(f"Tenant {tenant}, {period}: by model", "model")
        for model, s in usage["by_model"].items():
            by_model.add_row(model, *_summary_cells(s))
        by_model.add_section()
        by_model.add_row("[bold]total[/bold]", *_summary_cells(usage["totals"]))
        console.print(by_model)
        by_day = _table("by day", "day")
        for day, s in usage["by_day"].items():
            by_day.add_row(day, *_summary_cells(s))
        console.print(by_day)
        agents = _table("by agent (whole months)", "agent")
        for agent, s in routing.get("agents", {}).items():
            agents.add_row(agent, *_summary_cells(s))
        console.print(agents)
    finally:
        await mongo.close()


# ---------------------------------------------------------------------------------------------------
# tail metering


def _usage_table(rows: list[Any], seen: int) -> Any:
    from rich.table import Table

    table = Table(title=f"metering.usage: {seen:,} messages (Ctrl-C stops)", title_justify="left")
    for col, justify in (("time", "left"), ("tenant", "left"), ("day", "left"), ("+calls", "right"), ("+tokens", "right"),
                         ("+cost", "right"), ("calls", "right"), ("cost", "right"), ("savings", "right")):
        table.add_column(col, justify=justify)
    for m in rows:
        d, t = m.delta, m.totals
        savings = (t.llm_cost_usd - t.cost_usd) / t.llm_cost_usd * 100 if t.llm_cost_usd else 0.0
        table.add_row(m.time.strftime("%H:%M:%S"), m.tenant_id, m.day.isoformat(), f"{d.calls:,}",
                      f"{d.input_tokens + d.output_tokens:,}", _usd(d.cost_usd), f"{t.calls:,}", _usd(t.cost_usd),
                      f"{savings:.1f}%")
    return table


async def _tail(console: Any, max_messages: int, from_beginning: bool, keep: int) -> None:
    from pydantic import ValidationError
    from rich.live import Live

    from modelyard_core.kafka_clients import make_consumer
    from modelyard_core.settings import Settings
    from modelyard_events import MeteringUsage

    settings = Settings()
    consumer = make_consumer(settings.kafka, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest" if from_beginning else "latest")
    await consumer.start()
    rows: list[MeteringUsage] = []
    seen = 0
    try:
        consumer.subscribe([settings.topics.name("metering")])  # without a group: every partition
        with Live(_usage_table(rows, seen), console=console, refresh_per_second=4) as live:
            while not max_messages or seen < max_messages:
                batches = await consumer.getmany(timeout_ms=250)
                for record in (r for records in batches.values() for r in records):
                    if max_messages and seen >= max_messages:
                        break
                    try:
                        rows.append(MeteringUsage.model_validate_json(record.value))
                    except ValidationError:
                        continue
                    seen += 1
                del rows[:-keep]
                live.update(_usage_table(rows, seen))
    finally:
        await consumer.stop()


# ---------------------------------------------------------------------------------------------------
# bench metering


async def _bench(console: Any, events: int, tenants: int, naive_events: int, timeout_s: float) -> dict:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from .bench.metering import run_bench
    from modelyard_metering.settings import MeteringSettings

    settings = MeteringSettings()
    labels = {"publish": "publishing usage events", "fold": "folded by the metering service", "naive": "naive sink (one update per event)"}
    with Progress(TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(labels[phase], total=total)
            bar.update(tasks[phase], completed=done)

        result = await run_bench(settings, events=events, tenants=tenants, naive_events=naive_events,
                                 timeout_s=timeout_s, progress=progress)

    table = Table(title="metering benchmark", title_justify="left")
    table.add_column("")
    table.add_column("value", justify="right")
    for name, value in (
        ("usage events", f"{result.events:,} across {result.tenants} tenants"),
        ("usage topic", settings.topics.name("usage")),
        ("database", f"{settings.mongo.database} ({', '.join(f'{c} {n:,}' for c, n in result.documents.items())} documents)"),
        ("publish", f"{result.publish_s:.2f} s"),
        ("published → all folded", f"{result.fold_s:.2f} s"),
        ("folded per second", f"{result.folded_per_s:,.0f}"),
        ("naive: one $inc per event per document", f"{result.naive_events:,} events in {result.naive_s:.2f} s"),
        ("naive per second", f"{result.naive_per_s:,.1f}"),
        ("speed-up", f"{result.speedup:,.1f}x"),
        ("exact (calls, queries, tokens, cost per tenant)", "yes" if result.exact else "[red]NO[/red]"),
    ):
        table.add_row(name, value)
    console.print(table)
    for line in result.mismatches:
        console.print(f"[red]{line}[/red]")
    return result.summary()
