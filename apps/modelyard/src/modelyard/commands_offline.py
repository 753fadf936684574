"""Offline tools that run exactly the services' decision code on files: classify, cascade-score (eval-router and
train-router are in ``commands_learn``)."""

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

    @app.command("cascade-score")
    def cascade_score(threshold: Annotated[float, typer.Option(min=0, max=1)] = 0.6) -> None:
        """Read JSON lines {"query", "response", "logprobs"?} on stdin; write {"confidence", "escalate", "reasons"}."""
        from modelyard_inference.confidence import score_lines

        for line in score_lines(sys.stdin, threshold=threshold):
            sys.stdout.write(line + "\n")

    @bench_app.command("classifier")
    def bench_classifier(n: Annotated[int, typer.Option(min=1000)] = 50_000) -> None:
        """Classifier decisions per second on one core, and p50/p99 per decision."""
        from .bench.classifier import bench_classifier as run

        typer.echo(json.dumps(run(n)))
