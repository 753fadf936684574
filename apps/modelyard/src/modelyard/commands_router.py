"""Router commands: `modelyard router publish-model` (a learned model for every replica) and `modelyard bench
router` (service throughput on the real broker)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    from .cli import router_app

    @router_app.command("learner")
    def learner() -> None:
        """Run the router's online learner alone (one per deployment): it learns from queries.outcomes and publishes
        what it learned on router.models, which every router replica follows."""
        from modelyard_router.learning_service import create_learner_app
        from modelyard_router.settings import RouterSettings

        from .cli import _run_stream_app

        _run_stream_app("router-learner", RouterSettings(), create_learner_app)

    @router_app.command("publish-model")
    def publish_model(
        model: Annotated[str | None, typer.Argument(help="A model file, or a shipped one by name (helpdesk, mmlu).")] = None,
        name: Annotated[str, typer.Option(help="The name it serves under: default (every tenant), or a name tenant "
                                          "policies select (router_model).")] = "default",
        description: Annotated[str, typer.Option(help="A note kept with the publication.")] = "",
        withdraw: Annotated[bool, typer.Option("--withdraw", help="Withdraw the model published under --name "
                                               "instead (MODEL is ignored).")] = False,
    ) -> None:
        """Store a router model file in the router's database and announce it on router.models: every router replica
        switches to it (prints the publication as JSON)."""
        from modelyard_learn import modelfile
        from modelyard_router.learned import resolve
        from modelyard_router.settings import RouterSettings

        settings = RouterSettings()
        doc = None
        if not withdraw:
            if model is None:
                raise typer.BadParameter("name a model file (or --withdraw)", param_hint="MODEL")
            try:
                _, doc = modelfile.load(resolve(model))
                modelfile.from_json(doc)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="MODEL") from None
        result = asyncio.run(_publish(settings, doc, name, description))
        typer.echo(json.dumps(result))

    @bench_app.command("router")
    def bench_router(
        queries: Annotated[int, typer.Option(min=1, help="Backlog size.")] = 50_000,
        tenants: Annotated[int, typer.Option(min=1, help="Tenants the backlog comes from (quotas never bind).")] = 50,
        kafka: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_KAFKA")] = "127.0.0.1:9092",
        mongo_url: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_MONGO_URL")] = "mongodb://127.0.0.1:27017",
        partitions: Annotated[int, typer.Option(min=1)] = 8,
        routers: Annotated[int, typer.Option(min=1, help="Router processes (one consumer group).")] = 1,
        external: Annotated[bool, typer.Option(help="Measure a router already running on --prefix.")] = False,
        prefix: Annotated[str | None, typer.Option(help="Topic prefix (default: a fresh one).")] = None,
        profile: Annotated[Path | None, typer.Option(help="Record the router with py-spy; collapsed stacks here.")] = None,
        batch_records: Annotated[int | None, typer.Option(help="Router's submitted batch size (default: its setting).")] = None,
        keep: Annotated[bool, typer.Option(help="Keep the run's topics and database.")] = False,
    ) -> None:
        """Router throughput: a backlog of queries from many tenants drained by one router process."""
        from rich.console import Console
        from rich.table import Table

        from .bench.router import RouterBench, run

        if external and not prefix:
            raise typer.BadParameter("--external needs the --prefix of the running router")
        console = Console(stderr=True)
        env = {"MODELYARD_SUBMITTED_BATCH_RECORDS": str(batch_records)} if batch_records else {}
        cfg = RouterBench(queries=queries, tenants=tenants, kafka=kafka, mongo_url=mongo_url, partitions=partitions,
                          routers=routers, external=external, prefix=prefix, profile=profile, keep=keep, router_env=env)
        result = asyncio.run(run(cfg, progress=lambda s: console.print(f"[dim]{s}[/dim]")))
        result["load_avg_1m"] = round(os.getloadavg()[0], 2)
        result["cpus"] = os.cpu_count()

        table = Table(title="modelyard bench router: one router process draining a backlog on the real broker")
        table.add_column("measure")
        table.add_column("value", justify="right")
        rows = [
            ("queries", f"{result['queries']:,}"),
            ("tenants / partitions / router processes",
             f"{result['tenants']} / {result['partitions']} / {result['routers'] or 'external'}"),
            ("router throughput", f"{result['router_qps']:,} queries/s"),
            ("drain time", f"{result['drain_s']:.2f} s"),
            ("router CPU", f"{result['router_cpu_s']} s" if result["router_cpu_s"] is not None else "-"),
            ("queries per router CPU second",
             f"{result['queries_per_router_cpu_s']:,}" if result["queries_per_router_cpu_s"] else "-"),
            ("routed slm / llm / outcomes", f"{result['routed_slm']:,} / {result['routed_llm']:,} / {result['outcomes']:,}"),
            ("backlog publish time", f"{result['publish_s']:.2f} s"),
            ("load average (1 min) after", str(result["load_avg_1m"])),
        ]
        for row in rows:
            table.add_row(*row)
        console.print(table)
        if result.get("profile_top"):
            hot = Table(title=f"hottest frames (py-spy, {result['profile']})")
            for col in ("frame", "inclusive", "self"):
                hot.add_column(col, justify="left" if col == "frame" else "right")
            for f in result["profile_top"]:
                hot.add_row(f["frame"][:110], f"{f['inclusive']:.1%}", f"{f['self']:.1%}")
            console.print(hot)
        typer.echo(json.dumps(result))


async def _publish(settings, doc: dict | None, name: str, description: str) -> dict:
    from modelyard_core.bus import Bus
    from modelyard_core.store import make_mongo
    from modelyard_router import published
    from modelyard_router.mongo import MongoModelFiles

    bus = Bus(settings, "router", client_id="modelyard-router-publish")
    await bus.ensure_topics([settings.topics.name("router_models")])
    await bus.broker.start()
    mongo = make_mongo(settings.mongo, app_name="modelyard-router-publish")
    try:
        if doc is None:
            await published.withdraw(bus, name)
            return {"withdrawn": name, "topic": settings.topics.name("router_models")}
        files = MongoModelFiles(mongo[settings.admission_database_name][settings.router.models_collection])
        event = await published.publish(bus, files, doc, name=name, description=description)
        return {**event.model_dump(mode="json"), "topic": settings.topics.name("router_models")}
    finally:
        await bus.broker.stop()
        await mongo.close()
