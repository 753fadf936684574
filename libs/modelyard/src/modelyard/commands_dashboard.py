"""The web dashboard: `modelyard dashboard` serves it."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command()
    def dashboard() -> None:
        """Run the web dashboard (MODELYARD_DASHBOARD_PORT, default 8082), reading the tenant API at MODELYARD_DASHBOARD_API_URL."""
        from modelyard_dashboard import DashboardSettings, serve

        serve(DashboardSettings())
