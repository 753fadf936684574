"""modelyard's pytest plugin, registered through the ``pytest11`` entry point of ``modelyard-testing``.

One fixture per infrastructure piece, joined per test:

* ``kafka`` (session): bootstrap servers of a real Kafka broker;
* ``mongo_url`` (session): URL of a real MongoDB-protocol server (FerretDB or MongoDB);
* ``secured_kafka`` (session): a SASL_SSL broker with ACL authorisation and one SCRAM user per service
  (``MODELYARD_TEST_KAFKA_SASL_DIR``: the run folder of ``kafka.sh start --sasl-ssl``, which ``make test``
  starts; skipped without it);
* ``stack`` (module): the whole pipeline as real processes (``modelyard_harness.build_stack``) on both,
  under a topic prefix and a database of the module's own.

Endpoints come from ``MODELYARD_TEST_KAFKA`` and ``MODELYARD_TEST_MONGO_URL`` (``make test`` starts Kafka
and FerretDB on test ports and sets them). Where one is unset and a Docker daemon answers, that piece is
started with testcontainers; otherwise the tests that need it are skipped with the reason.

Marking is structural: a test that uses ``kafka`` or ``mongo_url`` (directly or through any fixture,
``stack`` included) is marked ``system``, so ``-m "not system and not faults"`` (``make test-unit``)
leaves it out. Every other test runs with sockets closed (pytest-socket, Unix sockets allowed for the
event loop): one that reaches a server without asking for it fails at once with ``SocketBlockedError``
instead of quietly needing a server. A test that talks TCP to a process it starts itself says so with
``@pytest.mark.loopback``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from pytest_socket import disable_socket, enable_socket

from modelyard_harness import SecuredKafka, Stack, build_stack, unique_prefix

#: Fixtures that reach a shared server; every server fixture of this plugin depends on one of them.
SERVER_FIXTURES = frozenset({"kafka", "mongo_url", "secured_kafka"})
#: Markers under which a test may open network sockets.
SOCKET_MARKERS = ("system", "faults", "loopback")

MARKERS = (
    "system: needs the real Kafka broker or MongoDB-protocol server (set by the modelyard plugin on every test that uses them)",
    "faults: fault-injection scenarios on the real stack (kills, restarts, error storms)",
    "loopback: talks TCP to processes the test starts itself (no shared server); sockets stay open for it",
)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection reads the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("system") is None:
            item.add_marker(pytest.mark.system)


@pytest.hookimpl(tryfirst=True)  # before the fixtures are set up (and before pytest-socket's own hook)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if any(item.get_closest_marker(name) is not None for name in SOCKET_MARKERS):
        enable_socket()
    else:
        disable_socket(allow_unix_socket=True)  # pytest-socket opens them again at teardown


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _server(variable: str, container: Callable[[], AbstractContextManager[str]]) -> Iterator[str]:
    """The endpoint in ``variable``; else one from a container (where Docker answers); else skip."""
    if endpoint := os.environ.get(variable):
        yield endpoint
        return
    if not _docker_answers():
        pytest.skip(f"no {variable} and no Docker daemon: run `make test` (it starts Kafka and FerretDB)")
    with container() as endpoint:
        yield endpoint


@contextmanager
def _kafka_container() -> Iterator[str]:
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
        yield container.get_bootstrap_server()


@contextmanager
def _mongo_container() -> Iterator[str]:
    from testcontainers.mongodb import MongoDbContainer

    with MongoDbContainer("mongo:8.0") as container:
        yield container.get_connection_url()


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker (``MODELYARD_TEST_KAFKA``, else a container)."""
    yield from _server("MODELYARD_TEST_KAFKA", _kafka_container)


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """URL of a real MongoDB-protocol server (``MODELYARD_TEST_MONGO_URL``, else a MongoDB container)."""
    yield from _server("MODELYARD_TEST_MONGO_URL", _mongo_container)


@pytest.fixture(scope="session")
def secured_kafka() -> SecuredKafka:
    """The secured broker (``MODELYARD_TEST_KAFKA_SASL_DIR``): SASL_SSL only, ACLs enforced."""
    folder = os.environ.get("MODELYARD_TEST_KAFKA_SASL_DIR")
    if not folder:
        pytest.skip("no MODELYARD_TEST_KAFKA_SASL_DIR: run `make test` (it starts the secured broker too)")
    return SecuredKafka.from_folder(Path(folder))


@pytest.fixture(scope="module")
def stack(kafka: str, mongo_url: str, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The whole pipeline as real processes, isolated by a topic prefix and a database of its own."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    s = build_stack(kafka, mongo_url, unique_prefix(name))
    with s.running():
        yield s
