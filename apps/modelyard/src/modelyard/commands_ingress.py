"""The OpenAI-compatible ingress: `modelyard ingress` serves it, `modelyard bench http` and `modelyard bench stream`
measure it."""

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
        reference_url: Annotated[str | None, typer.Option(help="Also send the load to this OpenAI-compatible gateway "
                                                               "(e.g. a LiteLLM proxy in front of the same simulator).")] = None,
        reference_key: Annotated[str | None, typer.Option(envvar="MODELYARD_BENCH_REFERENCE_KEY", help="Its API key.")] = None,
    ) -> None:
        """Requests/s and p50/p99 through the ingress, and of the same load sent straight to the simulator."""
        from rich.console import Console
        from rich.table import Table

        from .bench.http import run

        figures = run(
            ingress_url=ingress_url, simulator_url=simulator_url, api_url=api_url,
            admin_token=os.environ.get("MODELYARD_ADMIN_TOKEN", "dev-admin-token"), api_key=api_key,
            concurrency=concurrency, seconds=seconds, warmup_s=warmup_s, model=model, zero_latency=zero_latency,
            reference_url=reference_url, reference_key=reference_key,
        )
        table = Table(title=f"HTTP chat completions, concurrency {concurrency}, {seconds:g} s each, simulator {figures['simulator_latency']}")
        for col in ("path", "requests/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "ok", "failed"):
            table.add_column(col, justify="left" if col == "path" else "right")
        for name, label in (("direct", "simulator"), ("ingress", f"ingress ({model})"), ("reference", "reference")):
            if name not in figures:
                continue
            r = figures[name]
            table.add_row(label, f"{r['requests_per_s']:,.1f}", *(f"{r[k]:.1f}" if r[k] is not None else "-" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
                          str(r["ok"]), str(r["failed"]))
        console = Console(stderr=False)
        console.print(table)
        console.print(f"modelyard adds p50 {figures['added_p50_ms']} ms, p99 {figures['added_p99_ms']} ms; "
                      f"{figures['ingress']['escalated']} of {figures['ingress']['ok']} answers were escalated")
        typer.echo(json.dumps(figures))

    @bench_app.command("stream")
    def bench_stream(
        concurrency: Annotated[int, typer.Option(min=1, max=1024, help="Streams in flight at once (closed loop).")] = 16,
        seconds: Annotated[float, typer.Option(min=1, help="Measured duration of each of the two runs.")] = 30.0,
        warmup_s: Annotated[float, typer.Option(min=0, help="Unmeasured load before each run.")] = 5.0,
        model: Annotated[str, typer.Option(help="The model streamed (pinned: a final route, its tokens stream live).")] = "gpt-4o",
        latency_ms: Annotated[float, typer.Option(min=0, help="The simulator model's fixed time to first token.")] = 250.0,
        tokens_per_s: Annotated[float, typer.Option(min=0, help="The simulator model's token rate after the first.")] = 60.0,
        ingress_url: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_INGRESS_URL")] = "http://127.0.0.1:8081",
        simulator_url: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_SIMULATOR_URL")] = "http://127.0.0.1:8090",
        api_url: Annotated[str, typer.Option(envvar="MODELYARD_DEMO_API_URL", help="Tenant API (creates the bench tenant).")] = "http://127.0.0.1:8080",
        api_key: Annotated[str | None, typer.Option(envvar="MODELYARD_BENCH_API_KEY", help="Use this tenant key instead of creating a tenant.")] = None,
        kafka: Annotated[str | None, typer.Option(help="Start a private deployment on this Kafka (with --mongo-url) instead of using a running one.")] = None,
        mongo_url: Annotated[str | None, typer.Option(help="MongoDB of the private deployment.")] = None,
    ) -> None:
        """Time to first token of streamed chat completions through modelyard and straight to the simulator."""
        import asyncio

        from .bench.stream import run_stream_bench, run_with_own_stack

        options = dict(concurrency=concurrency, seconds=seconds, warmup_s=warmup_s, model=model, latency_ms=latency_ms,
                       tokens_per_s=tokens_per_s, admin_token=os.environ.get("MODELYARD_ADMIN_TOKEN", "dev-admin-token"))
        if (kafka is None) != (mongo_url is None):
            raise typer.BadParameter("--kafka and --mongo-url go together")
        if kafka is not None:
            figures = asyncio.run(run_with_own_stack(kafka, mongo_url, **options))  # type: ignore[arg-type]
        else:
            figures = asyncio.run(run_stream_bench(ingress_url=ingress_url, simulator_url=simulator_url, api_url=api_url,
                                                   api_key=api_key, **options))
        for name, label in (("direct", "simulator"), ("ingress", f"ingress ({model})"), ("reference", "reference")):
            if name not in figures:
                continue
            r = figures[name]
            typer.echo(f"{label:>22}: time to first token p50 {r['ttft_p50_ms']} ms, p99 {r['ttft_p99_ms']} ms; "
                       f"last token p50 {r['last_token_p50_ms']} ms; {r['responses']} streams, {r['failed']} failed")
        typer.echo(f"modelyard adds to the first token: p50 {figures['added_ttft_p50_ms']} ms, p99 {figures['added_ttft_p99_ms']} ms")
        typer.echo(json.dumps(figures))
