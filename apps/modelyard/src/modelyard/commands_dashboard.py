"""The web dashboard: `modelyard dashboard` serves it, `modelyard screenshots` photographs it for the docs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command()
    def dashboard() -> None:
        """Run the web dashboard (MODELYARD_DASHBOARD_PORT, default 8082), reading the tenant API at MODELYARD_DASHBOARD_API_URL."""
        from modelyard_dashboard import DashboardSettings, serve

        serve(DashboardSettings())

    @bench_app.command("dashboard")
    def bench_dashboard(
        url: Annotated[str, typer.Option(help="The dashboard.")] = "http://127.0.0.1:8082",
        token: Annotated[str, typer.Option(envvar="MODELYARD_ADMIN_TOKEN", help="The platform administrator token.")] = "dev-admin-token",
        requests: Annotated[int, typer.Option(min=5, help="Requests per page.")] = 50,
        pid: Annotated[int | None, typer.Option(help="The dashboard's process id, for its CPU per page.")] = None,
    ) -> None:
        """Latency (p50/p99) of the dashboard's pages and live fragments against a running stack."""
        import json

        from .bench.dashboard import run

        result = run(url, token, requests, pid)
        for page, figures in result["pages"].items():
            typer.echo(f"{page:18} p50 {figures['p50_ms']:>7} ms  p99 {figures['p99_ms']:>7} ms  {figures['bytes']:>7} bytes", err=True)
        typer.echo(json.dumps(result))

    @app.command()
    def screenshots(
        url: Annotated[str, typer.Option(help="The dashboard.")] = "http://127.0.0.1:8082",
        token: Annotated[str, typer.Option(envvar="MODELYARD_ADMIN_TOKEN", help="The platform administrator token.")] = "dev-admin-token",
        out: Annotated[Path, typer.Option(help="Folder for the PNG files.")] = Path("docs"),
    ) -> None:
        """Screenshots of a running dashboard (the overview, the organisation nearest its quotas, and that page on a phone)."""
        from modelyard_harness.browser import why_no_browser

        from .screenshots import shoot

        if reason := why_no_browser():
            raise typer.BadParameter(f"cannot take screenshots: {reason}")
        for path in asyncio.run(shoot(url.rstrip("/"), token, out)):
            typer.echo(path)
