"""docker-compose.yml is consistent with itself and with the services' settings.

No Docker engine runs here, so these read the file: health-gated dependencies point at services
that have a healthcheck, consumers get more time to stop than their graceful shutdown needs, the
inference pools reach the simulator, and the brokers the services use are the ones Kafka advertises.
Where the Compose v2 plugin is installed, ``docker compose config -q`` validates the file as well.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard_core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def modelyard_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image", "").startswith("modelyard:")}


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_every_process_of_the_stack_is_there(compose: dict[str, Any]) -> None:
    commands = {tuple(s["command"]) for s in modelyard_services(compose).values()}
    assert {("tenant",), ("router",), ("metering",), ("simulator",), ("dashboard",), ("webhooks",),
            ("inference", "--pool", "slm"), ("inference", "--pool", "llm")} <= commands
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")
    assert compose["services"]["mongo"]["image"].startswith("mongo:")


def test_health_gated_dependencies_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule.get("condition") == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}, which has no healthcheck"


def test_consumers_get_more_time_to_stop_than_their_shutdown_needs(compose: dict[str, Any]) -> None:
    default = Settings.model_fields["shutdown_timeout_s"].default
    for name, service in modelyard_services(compose).items():
        timeout = float(service["environment"].get("MODELYARD_SHUTDOWN_TIMEOUT_S", default))
        assert seconds(service["stop_grace_period"]) > timeout, name


def test_services_use_the_broker_kafka_advertises(compose: dict[str, Any]) -> None:
    advertised = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    listeners = {url.split("://")[1] for url in advertised.split(",")}
    for name, service in modelyard_services(compose).items():
        assert service["environment"]["MODELYARD_KAFKA__BOOTSTRAP_SERVERS"] in listeners, name


def test_inference_pools_call_the_simulator(compose: dict[str, Any]) -> None:
    services = compose["services"]
    port = services["simulator"]["environment"]["MODELYARD_SIMULATOR_PORT"]
    for pool in ("inference-slm", "inference-llm"):
        assert services[pool]["environment"]["MODELYARD_BACKEND_BASE_URL"] == f"http://simulator:{port}/v1"
        assert services[pool]["depends_on"]["simulator"]["condition"] == "service_healthy"


def compose_v2() -> list[str] | None:
    """The Compose v2 command, if installed: the docker plugin, or a standalone docker-compose that is not v1."""
    if shutil.which("docker"):
        if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        done = subprocess.run(["docker-compose", "version", "--short"], capture_output=True, text=True)
        if done.returncode == 0 and not done.stdout.strip().startswith("1."):
            return ["docker-compose"]
    return None


@pytest.mark.skipif(compose_v2() is None, reason="the Docker Compose v2 plugin is not installed")
def test_compose_config_validates() -> None:
    done = subprocess.run([*compose_v2(), "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
