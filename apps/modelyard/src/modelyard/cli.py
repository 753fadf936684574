"""The one `modelyard` command: every service, the demo, the benchmarks and the offline tools.

Each sub-command imports its service lazily, so `modelyard classify` does not pay for the Kafka client.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from enum import StrEnum
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: each prints a table and, as its last line, JSON.")
app.add_typer(bench_app, name="bench")


def _run_stream_app(service: str, settings, create_app) -> None:
    from modelyard_core.logs import setup_logging
    from modelyard_core.telemetry import setup_tracing

    setup_logging(service, settings.log_level, settings.log_format)
    setup_tracing(service)
    faststream_app = create_app(settings)
    from modelyard_core.runtime import tune_gc

    from .loop import run

    tune_gc(settings.gc_gen0_threshold)

    run(faststream_app.run(log_level=logging.getLevelName(settings.log_level.upper())))


# ---------------------------------------------------------------------------------------------------
# Services


router_app = typer.Typer(help="Run the router (without a sub-command), or manage its learned models.")
app.add_typer(router_app, name="router")


@router_app.callback(invoke_without_command=True)
def router(ctx: typer.Context) -> None:
    """Run the router: admission (quotas), complexity analysis, routing, escalations."""
    if ctx.invoked_subcommand is not None:
        return
    from modelyard_router.service import create_app
    from modelyard_router.settings import RouterSettings

    _run_stream_app("router", RouterSettings(), create_app)


class Pool(StrEnum):
    slm = "slm"
    llm = "llm"


@app.command()
def inference(pool: Annotated[Pool, typer.Option(help="Which pool this worker serves.")] = Pool.slm) -> None:
    """Run an inference worker of the SLM or LLM pool."""
    from modelyard_inference.service import create_app
    from modelyard_inference.settings import InferenceSettings

    settings = InferenceSettings(pool=pool.value)
    _run_stream_app(f"inference-{pool.value}", settings, create_app)


@app.command()
def metering() -> None:
    """Run the metering sink: usage documents, metering topic, quota alerts."""
    from modelyard_metering.service import create_app
    from modelyard_metering.settings import MeteringSettings

    _run_stream_app("metering", MeteringSettings(), create_app)


@app.command()
def tenant() -> None:
    """Run the tenant service (HTTP API on MODELYARD_API_PORT, default 8080)."""
    from modelyard_core.logs import setup_logging
    from modelyard_core.telemetry import setup_tracing
    from modelyard_tenant.app import serve
    from modelyard_tenant.settings import TenantServiceSettings

    settings = TenantServiceSettings()
    setup_logging("tenant", settings.log_level, settings.log_format)
    setup_tracing("tenant")
    serve(settings)


@app.command()
def simulator() -> None:
    """Run the model simulator: an OpenAI-compatible server (MODELYARD_SIMULATOR_PORT, default 8090)."""
    from modelyard_simulator import SimulatorConfig, serve

    serve(SimulatorConfig())


@app.command("topics")
def topics_create() -> None:
    """Create every modelyard topic that does not exist yet (services also do this at start-up)."""
    from modelyard_core.bus import ensure_topics
    from modelyard_core.settings import Settings

    settings = Settings()
    asyncio.run(ensure_topics(settings, settings.topics.all_topics()))
    typer.echo("\n".join(settings.topics.all_topics()))


# ---------------------------------------------------------------------------------------------------
# Demo


@app.command()
def demo(
    api_url: Annotated[str, typer.Option(envvar="MODELYARD_DEMO_API_URL")] = "http://127.0.0.1:8080",
    queries: Annotated[int, typer.Option(min=1)] = 240,
    timeout_s: Annotated[float, typer.Option()] = 120.0,
) -> None:
    """Publish a helpdesk query stream for several tenants to a running stack and report what routing saved."""
    from modelyard.demo import run_demo

    sys.exit(asyncio.run(run_demo(api_url=api_url, queries=queries, timeout_s=timeout_s)))


def _register_tool_commands() -> None:
    # Each area keeps its commands in a module of its own (modelyard/commands_<area>.py) whose
    # register(app, bench_app) adds them; imports inside the commands stay lazy.
    import importlib
    import pkgutil

    from . import __path__ as package_path

    for info in sorted(pkgutil.iter_modules(package_path), key=lambda i: i.name):
        if info.name.startswith("commands_"):
            importlib.import_module(f"{__package__}.{info.name}").register(app, bench_app)


def main() -> None:
    _register_tool_commands()
    app()


if __name__ == "__main__":
    main()
