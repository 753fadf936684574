"""Webhook commands: `modelyard webhooks` (the dispatcher), `modelyard webhooks replay`, and
`modelyard secrets rotate` (re-encrypt stored secrets after a master-key rotation)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    webhooks_app = typer.Typer(help="The webhook dispatcher, and replays of parked deliveries.")
    app.add_typer(webhooks_app, name="webhooks")

    @webhooks_app.callback(invoke_without_command=True)
    def webhooks(ctx: typer.Context) -> None:
        """Run the webhook dispatcher: tenant events to tenants' endpoints, signed, retried, parked (`replay` sends again)."""
        if ctx.invoked_subcommand is not None:
            return
        from modelyard_webhooks.service import create_app
        from modelyard_webhooks.settings import DispatcherSettings

        from .cli import _run_stream_app

        _run_stream_app("webhooks", DispatcherSettings(), create_app)

    @webhooks_app.command("replay")
    def replay(
        endpoint: Annotated[str | None, typer.Option("--endpoint", help="Only deliveries to this endpoint (webhook id).")] = None,
        tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's deliveries.")] = None,
        delivery: Annotated[str | None, typer.Option("--delivery", help="Only this delivery.")] = None,
        since: Annotated[datetime | None, typer.Option("--since", help="Only deliveries parked at or after this time (UTC).")] = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be sent again, change nothing.")] = False,
    ) -> None:
        """Make parked deliveries (webhooks.parked) pending again; the running dispatcher sends them. Repeatable."""
        from datetime import UTC

        from modelyard_webhooks.replay import ReplayFilter
        from modelyard_webhooks.replay import replay as run_replay
        from modelyard_webhooks.settings import DispatcherSettings

        flt = ReplayFilter(endpoint, tenant, delivery, since.replace(tzinfo=since.tzinfo or UTC) if since else None)
        result = asyncio.run(run_replay(DispatcherSettings(), flt, dry_run=dry_run))
        for delivery_id in result.requeued:
            typer.echo(("would replay " if dry_run else "replaying ") + delivery_id)
        typer.echo(json.dumps({**result.summary(), "dry_run": dry_run}))

    secrets_app = typer.Typer(no_args_is_help=True, help="Secrets at rest (MODELYARD_MASTER_KEYS).")
    app.add_typer(secrets_app, name="secrets")

    @secrets_app.command("rotate")
    def rotate() -> None:
        """Re-encrypt every stored secret (webhook secrets, tenants' model API keys, whose snapshots are
        published again) with the first key of MODELYARD_MASTER_KEYS; then the old key can go."""
        result = asyncio.run(_reseal())
        typer.echo(json.dumps(result))


async def _reseal() -> dict:
    from modelyard_tenant.app import reseal_secrets
    from modelyard_tenant.settings import TenantServiceSettings

    return await reseal_secrets(TenantServiceSettings())
