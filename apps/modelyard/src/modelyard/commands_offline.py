"""Offline tools that run exactly the router's decision code on files: classify, eval-router (the cascade's
are in ``commands_cascade``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_MMLU = Path(__file__).resolve().parents[4] / ".." / "shared" / "data" / "routellm_mmlu"


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command()
    def classify() -> None:
        """Read JSON lines {"text", "user_role"?, "history"?, "industry"?, "agent_type"?} on stdin; write decisions."""
        from modelyard_core.pricing import load_pricing
        from modelyard_router.offline import classify_lines

        for line in classify_lines(sys.stdin, load_pricing()):
            sys.stdout.write(line + "\n")

    @app.command("eval-router")
    def eval_router(
        data: Annotated[Path, typer.Option(help="Folder of the RouteLLM MMLU labels.")] = DEFAULT_MMLU,
        seed: int = 0,
    ) -> None:
        """APGR of the router's score on labelled small-vs-large correctness data, next to a random ranking."""
        from modelyard_router.offline import eval_router as run

        if not data.is_dir():
            raise typer.BadParameter(f"{data} is not a folder (pass --data ../shared/data/routellm_mmlu)")
        typer.echo(json.dumps(run(data.resolve(), seed=seed)))

    @bench_app.command("classifier")
    def bench_classifier(n: Annotated[int, typer.Option(min=1000)] = 50_000) -> None:
        """Classifier decisions per second on one core, and p50/p99 per decision."""
        from .bench.classifier import bench_classifier as run

        typer.echo(json.dumps(run(n)))
