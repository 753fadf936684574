"""Offline tools that run exactly the router's decision code on files: classify (train-router and eval-router are in
``commands_learn``, the cascade's tools in ``commands_cascade``)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command()
    def classify(
        router_model: Annotated[str | None, typer.Option(help="A learned router model: a file, or a shipped one by "
                                                         "name (helpdesk, mmlu). Without it: the keyword analysis.")] = None,
    ) -> None:
        """Read JSON lines {"text", "user_role"?, "history"?, "industry"?, "agent_type"?} on stdin; write decisions."""
        from modelyard_core.pricing import load_pricing
        from modelyard_router.offline import classify_lines

        learned = None
        if router_model is not None:
            from modelyard_router.learned import LearnedRouter

            try:
                learned = LearnedRouter.load(router_model)
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--router-model") from None
        for line in classify_lines(sys.stdin, load_pricing(), learned=learned):
            sys.stdout.write(line + "\n")


    @bench_app.command("classifier")
    def bench_classifier(
        n: Annotated[int, typer.Option(min=1000)] = 50_000,
        router_model: Annotated[str, typer.Option(help="The learned model measured beside the keyword analysis (a "
                                                  "file or a shipped name); 'none' to skip it.")] = "helpdesk",
    ) -> None:
        """Classifier decisions per second on one core, and p50/p99 per decision: without and with a learned model."""
        from .bench.classifier import bench_classifier as run

        result = run(n, None if router_model == "none" else router_model)
        _print_classifier(result)
        typer.echo(json.dumps(result))


def _print_classifier(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"modelyard bench classifier: {result['decisions']:,} decisions, one pinned core, "
                        f"load {result['load_avg_1m']}")
    for column in ("decision", "per s", "per CPU s", "p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "decision" else "right")
    rows = [("keyword analysis alone", result)]
    if "with_model" in result:
        rows.append((f"with {result['with_model']['router_model']}", result["with_model"]))
    for name, r in rows:
        table.add_row(name, f"{r['decisions_per_s']:,}", f"{r['decisions_per_cpu_s']:,}", str(r["p50_ms"]), str(r["p99_ms"]),
                      str(r["max_ms"]))
    Console(stderr=True).print(table)
