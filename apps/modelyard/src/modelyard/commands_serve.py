"""`modelyard serve --all`: router, both inference pools and metering in one process and one event loop.

For small deployments and the quick start: one process to supervise instead of four. Each role is the
same app its own command builds (``create_app`` of its service), with its own settings, Kafka clients,
consumer groups and topics — so it can replace the four processes (and run beside them: same groups, the
partitions are shared out). Settings come from the same ``MODELYARD_*`` variables; the two pools, which
are separate deployments otherwise, read pool-specific values first from ``MODELYARD_SLM_<NAME>`` and
``MODELYARD_LLM_<NAME>`` (e.g. ``MODELYARD_LLM_BACKEND_BASE_URL``). One ops server on
``MODELYARD_OPS_PORT`` answers for all four roles.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer


def pool_settings(pool: str):
    """A pool's settings: the shared ``MODELYARD_*`` values, overlaid with its ``MODELYARD_<POOL>_*`` ones."""
    from modelyard_inference.settings import InferenceSettings

    shared = InferenceSettings(pool=pool)
    own = InferenceSettings(_env_prefix=f"MODELYARD_{pool.upper()}_", pool=pool)
    return shared.model_copy(update={f: getattr(own, f) for f in own.model_fields_set if f != "pool"})


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command()
    def serve(
        all_roles: Annotated[bool, typer.Option("--all", help="Router, both inference pools and metering.")] = False,
    ) -> None:
        """Run several services in one process and one event loop (so far: --all of the query pipeline)."""
        if not all_roles:
            raise typer.BadParameter("say --all: router, inference slm and llm, and metering in this process")
        from modelyard_core.app import run_together
        from modelyard_core.logs import setup_logging
        from modelyard_core.runtime import tune_gc
        from modelyard_core.telemetry import setup_tracing
        from modelyard_inference.service import create_app as inference_app
        from modelyard_metering.service import create_app as metering_app
        from modelyard_metering.settings import MeteringSettings
        from modelyard_router.service import create_app as router_app
        from modelyard_router.settings import RouterSettings

        from .loop import run

        router = RouterSettings()
        setup_logging("modelyard-all", router.log_level, router.log_format)
        setup_tracing("modelyard-all")
        ops_port = router.ops_port
        no_ops = {"ops_port": 0}  # one ops server for the process, not one per role
        # Consumers of each hop start before its producers; they stop in reverse (router first).
        apps = [
            ("metering", metering_app(MeteringSettings().model_copy(update=no_ops))),
            ("inference-llm", inference_app(pool_settings("llm").model_copy(update=no_ops))),
            ("inference-slm", inference_app(pool_settings("slm").model_copy(update=no_ops))),
            ("router", router_app(router.model_copy(update=no_ops))),
        ]
        tune_gc(router.gc_gen0_threshold)
        logging.getLogger(__name__).info("modelyard serve --all: ops endpoints on port %s", ops_port or "(none)")
        run(run_together(apps, ops_port=ops_port))
