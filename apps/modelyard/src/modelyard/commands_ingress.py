"""The OpenAI-compatible ingress: `modelyard ingress` serves it, `modelyard bench http` measures it."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command()
    def ingress() -> None:
        """Run the OpenAI-compatible ingress: POST /v1/chat/completions over the bus (MODELYARD_INGRESS_PORT, default 8081)."""
        from modelyard_ingress import IngressSettings, serve

        serve(IngressSettings())

    @bench_app.command("http")
    def bench_http(
        concurrency: Annotated[int, typer.Option(min=1, max=1024, help="Requests in flight at once (closed loop).")] = 16,
        seconds: Annotated[float, typer.Option(min=1, help="Measured duration of each of the two runs.")] = 10.0,
        warmup_s: Annotated[float, typer.Option(min=0, help="Unmeasured load before each run.")] = 2.0,
        model: Annotated[str, typer.Option(help="`model` sent to the ingress: auto, slm, llm, llm_plus or a model name.")] = "auto",
        ingress_url: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_INGRESS_URL")] = "http://127.0.0.1:8081",
        simulator_url: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_SIMULATOR_URL")] = "http://127.0.0.1:8090",
        api_url: Annotated[str, typer.Option(envvar="MODELYARD_DEMO_API_URL", help="Tenant API (creates the bench tenant).")] = "http://127.0.0.1:8080",
        api_key: Annotated[str | None, typer.Option(envvar="MODELYARD_BENCH_API_KEY", help="Use this tenant key instead of creating a tenant.")] = None,
        zero_latency: Annotated[bool, typer.Option(help="Set the simulator to 0 ms for the run (restored afterwards).")] = True,
    ) -> None:
        """Requests/s and p50/p99 through the ingress, and of the same load sent straight to the simulator."""
        from rich.console import Console
        from rich.table import Table

        from .bench.http import run

        figures = run(
            ingress_url=ingress_url, simulator_url=simulator_url, api_url=api_url,
            admin_token=os.environ.get("MODELYARD_ADMIN_TOKEN", "dev-admin-token"), api_key=api_key,
            concurrency=concurrency, seconds=seconds, warmup_s=warmup_s, model=model, zero_latency=zero_latency,
        )
        table = Table(title=f"HTTP chat completions, concurrency {concurrency}, {seconds:g} s each, simulator {figures['simulator_latency']}")
        for col in ("path", "requests/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "ok", "failed"):
            table.add_column(col, justify="left" if col == "path" else "right")
        for name, label in (("direct", "simulator"), ("ingress", f"ingress ({model})")):
            r = figures[name]
            table.add_row(label, f"{r['requests_per_s']:,.1f}", *(f"{r[k]:.1f}" if r[k] is not None else "-" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
                          str(r["ok"]), str(r["failed"]))
        console = Console(stderr=False)
        console.print(table)
        console.print(f"modelyard adds p50 {figures['added_p50_ms']} ms, p99 {figures['added_p99_ms']} ms; "
                      f"{figures['ingress']['escalated']} of {figures['ingress']['ok']} answers were escalated")
        typer.echo(json.dumps(figures))
