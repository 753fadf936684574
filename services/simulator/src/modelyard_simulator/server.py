"""Run the simulator with uvicorn. SIGTERM and SIGINT stop it gracefully (uvicorn's own handlers)."""

from __future__ import annotations

import uvicorn
from modelyard_core.runtime import tune_gc

from modelyard_simulator.app import create_app
from modelyard_simulator.config import SimulatorConfig


def serve(config: SimulatorConfig | None = None) -> None:
    """Serve the simulator on ``config.host:config.port`` until SIGTERM/SIGINT."""
    config = config or SimulatorConfig()
    app = create_app(config)
    tune_gc(config.gc_gen0_threshold)
    uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            access_log=config.access_log,
            # in-flight requests get this long to finish; hung "timeouts" are cancelled after it
            timeout_graceful_shutdown=config.graceful_shutdown_s,
            lifespan="off",
        )
    ).run()


def main() -> None:
    """``python -m modelyard_simulator``: settings from ``MODELYARD_SIMULATOR_*``."""
    serve(SimulatorConfig())
