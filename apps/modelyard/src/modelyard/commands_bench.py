"""System benchmarks against a running stack (`make up`): `modelyard bench pipeline`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_RUN_DIR = Path(__file__).resolve().parents[4] / ".run" / "dev"


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @bench_app.command("pipeline")
    def pipeline(
        api_url: Annotated[str, typer.Option(envvar="MODELYARD_DEMO_API_URL")] = "http://127.0.0.1:8080",
        simulator_url: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_SIMULATOR_URL",
                                                   help="The stack's simulator; switched to 0 ms for the run.")] = "http://127.0.0.1:8090",
        rate: Annotated[float, typer.Option(help="Queries/s of the fixed-rate and soak phases.")] = 200.0,
        seconds: Annotated[float, typer.Option(help="Length of the fixed-rate phase.")] = 20.0,
        warmup: Annotated[float, typer.Option(help="Seconds at --rate before the fixed-rate phase, left out of "
                                                   "the latency figures (new tenants, cold caches).")] = 5.0,
        queries: Annotated[int, typer.Option(help="Queries of the maximum-rate phase.")] = 20_000,
        tenants: Annotated[int, typer.Option()] = 50,
        soak: Annotated[float, typer.Option(help="Seconds of soak at --rate (0: no soak).")] = 0.0,
        timeout_s: Annotated[float, typer.Option()] = 300.0,
        run_dir: Annotated[Path, typer.Option(help="Where `make up` keeps pid files (for memory figures).")] = DEFAULT_RUN_DIR,
    ) -> None:
        """End-to-end throughput, latency, memory and lost queries of a running stack."""
        from .bench.pipeline import run_pipeline_bench
        from .loop import run

        result = run(run_pipeline_bench(api_url=api_url, simulator_url=simulator_url, rate=rate, seconds=seconds, queries=queries,
                                                tenants=tenants, soak_s=soak, timeout_s=timeout_s, run_dir=run_dir,
                                                warmup_s=warmup))
        typer.echo(json.dumps(result))
