"""Model simulator commands: `modelyard bench simulator` (its own throughput and CPU per request at 0 ms,
or the agreement model's self-consistency figures over a CSV of prompts)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @bench_app.command("simulator")
    def bench_simulator(
        seconds: Annotated[float, typer.Option(min=0.5, help="Load per scenario.")] = 10.0,
        concurrency: Annotated[int, typer.Option(min=1)] = 16,
        scenario: Annotated[list[str] | None, typer.Option(help="Repeatable; default: every scenario.")] = None,
        agreement: Annotated[Path | None, typer.Option(
            help="Instead: self-consistency figures of the agreement model over this CSV's prompt column.")] = None,
        n: Annotated[int, typer.Option(min=2, max=128, help="With --agreement: samples per prompt.")] = 5,
    ) -> None:
        """The simulator at 0 ms: requests/s and its CPU time per request, per request shape."""
        from .bench.simulator import SCENARIOS, agreement_report, run

        if agreement is not None:
            typer.echo(json.dumps(asyncio.run(agreement_report(agreement, ["gpt-4o-mini", "gpt-4o"], n, 0.7))))
            return
        unknown = sorted(set(scenario or ()) - set(SCENARIOS))
        if unknown:
            raise typer.BadParameter(f"unknown scenario(s) {unknown}; known: {sorted(SCENARIOS)}")
        result = run(scenario or list(SCENARIOS), seconds, concurrency)
        for name, figures in result["scenarios"].items():
            typer.echo(f"{name:12} {figures['requests_per_s']:>8} req/s  {figures['simulator_cpu_ms_per_request']} ms CPU/request",
                       err=True)
        typer.echo(json.dumps(result))
