"""System benchmarks against a running stack (`make up`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    return None
