"""`modelyard schemas generate|check`: the event contract as files in schemas/."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_ROOT = Path(__file__).resolve().parents[4] / "schemas"


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    schemas_app = typer.Typer(no_args_is_help=True, help="JSON Schemas, AsyncAPI documents and examples in schemas/.")
    app.add_typer(schemas_app, name="schemas")

    @schemas_app.command("generate")
    def generate(root: Annotated[Path, typer.Option()] = DEFAULT_ROOT) -> None:
        """Regenerate schemas/ from the pydantic event models."""
        from .schemas import write

        changed = write(root)
        typer.echo("\n".join(f"wrote {c}" for c in changed) or "schemas/ is up to date")

    @schemas_app.command("check")
    def check(root: Annotated[Path, typer.Option()] = DEFAULT_ROOT) -> None:
        """Fail if schemas/ is stale or an event schema changed incompatibly within its version."""
        from .schemas import check as run

        result = run(root)
        for rel in result.stale:
            typer.echo(f"stale: {rel} (run `make schemas` and commit the result)", err=True)
        for problem in result.incompatible:
            typer.echo(f"incompatible: {problem} (a breaking change needs a new event version, e.g. .v2)", err=True)
        if not result.ok:
            raise typer.Exit(1)
        typer.echo("schemas/ is current and every change is additive")
