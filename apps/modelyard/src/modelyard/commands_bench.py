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
        run_dir: Annotated[Path, typer.Option(help="Where `make up` keeps pid files (for memory figures); with "
                                                   "--variants, where Kafka and FerretDB keep theirs.")] = DEFAULT_RUN_DIR,
        variants: Annotated[str | None, typer.Option(help="Instead of the running stack: start these deployments, "
                            "one after another, and compare them (comma-separated: separate-openai, separate-lean, "
                            "all-openai, all-lean; 'separate' = four pipeline processes, 'all' = one `serve --all`; "
                            "'+MODELYARD_NAME=VALUE' after a name sets a setting in that variant only).")] = None,
        rounds: Annotated[int, typer.Option(min=1, help="With --variants: rounds, alternating the order.")] = 1,
        kafka: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_KAFKA", help="With --variants.")] = "127.0.0.1:9092",
        mongo_url: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_MONGO_URL", help="With --variants.")] = "mongodb://127.0.0.1:27017",
        ports: Annotated[str, typer.Option(help="With --variants: HTTP ports of the stacks' processes, FIRST-LAST.")] = "39200-39299",
        profile: Annotated[str, typer.Option(help="With --variants: record these variants' SLM worker (or single "
                                                  "process) with py-spy (comma-separated).")] = "",
        native: Annotated[bool, typer.Option(help="py-spy --native (C frames too).")] = True,
        log_dir: Annotated[Path, typer.Option(help="With --variants: the stacks' logs and profiles.")] = Path(".run/bench-variants"),
    ) -> None:
        """End-to-end throughput, latency, memory and lost queries of a running stack (or of --variants)."""
        from .bench.pipeline import run_pipeline_bench
        from .loop import run

        if variants is not None:
            from rich.console import Console

            from modelyard_core.runtime import tune_gc

            from .bench.variants import VARIANTS, VariantRun, parse_variant, run_variants

            names = [v.strip() for v in variants.split(",") if v.strip()]
            if not names:
                raise typer.BadParameter(f"--variants takes some of {', '.join(VARIANTS)}")
            for name in names:
                try:
                    parse_variant(name)
                except ValueError as exc:
                    raise typer.BadParameter(f"--variants takes some of {', '.join(VARIANTS)}, each optionally "
                                             f"followed by +MODELYARD_NAME=VALUE ({exc})") from None
            first, _, last = ports.partition("-")
            cfg = VariantRun(kafka=kafka, mongo_url=mongo_url, infra_run_dir=run_dir, port_first=int(first),
                             port_last=int(last or first), rate=rate, seconds=seconds, warmup_s=warmup, queries=queries,
                             tenants=tenants, timeout_s=timeout_s, log_dir=log_dir.resolve(),
                             profile=tuple(p.strip() for p in profile.split(",") if p.strip()), native=native,
                             soak_s=soak)
            tune_gc(20_000)  # the load generator shares the machine with the stacks
            typer.echo(json.dumps(run(run_variants(cfg, names, rounds, Console(stderr=True, width=160)))))
            return

        result = run(run_pipeline_bench(api_url=api_url, simulator_url=simulator_url, rate=rate, seconds=seconds, queries=queries,
                                                tenants=tenants, soak_s=soak, timeout_s=timeout_s, run_dir=run_dir,
                                                warmup_s=warmup))
        typer.echo(json.dumps(result))
