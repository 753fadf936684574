"""Inference commands: `modelyard bench inference` (one worker on the real broker) and `bench inference-sdk`."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @bench_app.command("inference")
    def bench_inference(
        latency_ms: Annotated[list[float], typer.Option(help="Simulated model latency (fixed); repeat for several runs; 0 = the 0 ms mode.")] = [50.0, 0.0],  # noqa: B006 - typer needs a literal default
        queries: Annotated[int, typer.Option(min=100, help="Backlog of routed queries per run.")] = 5_000,
        concurrency: Annotated[int, typer.Option(min=1, help="The worker's MODELYARD_CONCURRENCY.")] = 512,
        kafka: Annotated[str, typer.Option(envvar="MODELYARD_BENCH_KAFKA")] = "127.0.0.1:9092",
        partitions: Annotated[int, typer.Option(min=1)] = 8,
        transport: Annotated[str, typer.Option(help="aiohttp or httpx (the SDK's HTTP layer, with --client openai).")] = "aiohttp",
        client: Annotated[str, typer.Option(help="The worker's MODELYARD_BACKEND_CLIENT: lean or openai.")] = "lean",
        logprobs: Annotated[bool, typer.Option(help="Request token log-probabilities (the production setting).")] = True,
        logs: Annotated[Path | None, typer.Option(help="Keep the simulator and worker logs here.")] = None,
    ) -> None:
        """One inference worker draining a backlog: queries/s, CPU per query, queries in flight."""
        from rich.console import Console
        from rich.table import Table

        from .bench.inference import WorkerBench, bench_worker

        if transport not in ("aiohttp", "httpx"):
            raise typer.BadParameter("--transport is aiohttp or httpx")
        if client not in ("lean", "openai"):
            raise typer.BadParameter("--client is lean or openai")
        console = Console(stderr=True)
        runs = []
        for latency in latency_ms:
            cfg = WorkerBench(latency_ms=latency, queries=queries, concurrency=concurrency, kafka=kafka,
                              partitions=partitions, transport=transport, client=client, logprobs=logprobs,
                              keep_logs=logs)
            runs.append(asyncio.run(bench_worker(cfg, progress=lambda s: console.print(f"[dim]{s}[/dim]"))))

        table = Table(title="modelyard bench inference: one worker process (pool slm) draining routed queries")
        table.add_column("measure")
        for r in runs:
            table.add_column(f"{r['latency_ms']:g} ms model latency", justify="right")
        rows = [
            ("throughput (queries/s)", "throughput_qps", "{:,.0f}"),
            ("worker CPU (% of one core)", "worker_cpu_pct", "{:.0f} %"),
            ("worker CPU per query", "worker_cpu_ms_per_query", "{:.2f} ms"),
            ("queries/s that saturate one core", "saturation_qps_one_core", "{:,.0f}"),
            ("simulator CPU (% of one core)", "simulator_cpu_pct", "{:.0f} %"),
            ("queries in progress in the worker: mean", "queries_in_progress_mean", "{:,.0f}"),
            ("... max sampled", "queries_in_progress_max_sampled", "{:,.0f}"),
            ("model calls in flight: peak", "model_calls_in_flight_peak", "{:,}"),
            ("... mean", "model_calls_in_flight_mean", "{:,.0f}"),
            ("requests at the model: mean", "requests_at_model_mean", "{:,.0f}"),
            ("... max sampled", "requests_at_model_max_sampled", "{:,.0f}"),
            ("drain time", "drain_s", "{:.1f} s"),
        ]
        for label, key, fmt in rows:
            table.add_row(label, *(fmt.format(r[key]) if r.get(key) is not None else "-" for r in runs))
        console.print(table)
        console.print(f"[dim]{queries:,} queries per run, concurrency {concurrency}, client {client}, transport {transport}, "
                      f"logprobs {logprobs}; load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs[/dim]")
        typer.echo(json.dumps({"runs": runs, "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}))

    @bench_app.command("inference-sdk")
    def bench_inference_sdk(
        calls: Annotated[int, typer.Option(min=100)] = 3_000,
        concurrency: Annotated[int, typer.Option(min=1)] = 128,
        rounds: Annotated[int, typer.Option(min=1)] = 2,
        logprobs: bool = True,
    ) -> None:
        """Client CPU per chat-completion call: typed `create` vs lean `client.post`, httpx2 vs aiohttp."""
        from rich.console import Console
        from rich.table import Table

        from .bench.inference import bench_sdk

        console = Console(stderr=True)
        result = bench_sdk(calls=calls, concurrency=concurrency, rounds=rounds, logprobs=logprobs,
                           progress=lambda s: console.print(f"[dim]{s}[/dim]"))
        table = Table(title="openai SDK: client CPU per chat-completion call (0 ms simulator, best of rounds)")
        table.add_column("transport / call")
        table.add_column("CPU per call", justify="right")
        table.add_column("calls/s per core", justify="right")
        for variant, ms in result["cpu_ms_per_call"].items():
            table.add_row(variant, f"{ms:.2f} ms", f"{1000 / ms:,.0f}")
        console.print(table)
        result["load_avg_1m"] = round(os.getloadavg()[0], 2)
        typer.echo(json.dumps(result))
