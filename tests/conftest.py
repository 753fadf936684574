"""Fixtures for system tests: real Kafka and a real MongoDB-protocol server.

Endpoints come from ``MODELYARD_TEST_KAFKA`` and ``MODELYARD_TEST_MONGO_URL`` (set by ``make test``,
which starts Kafka and FerretDB locally). Where they are unset and a Docker daemon answers, Kafka and
MongoDB are started with testcontainers instead. Otherwise system tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .stack import Stack, build_stack


@dataclass(frozen=True)
class Infra:
    kafka: str
    mongo_url: str


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    kafka, mongo = os.environ.get("MODELYARD_TEST_KAFKA"), os.environ.get("MODELYARD_TEST_MONGO_URL")
    if kafka and mongo:
        yield Infra(kafka, mongo)
        return
    if not _docker_answers():
        pytest.skip("no MODELYARD_TEST_KAFKA/MODELYARD_TEST_MONGO_URL and no Docker daemon: run `make test`")
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    with KafkaContainer("apache/kafka:4.1.1").with_kraft() as k, MongoDbContainer("mongo:8.0") as m:
        yield Infra(k.get_bootstrap_server(), m.get_connection_url())


def unique_prefix(name: str) -> str:
    return f"t{uuid.uuid4().hex[:8]}-{name}."


@pytest.fixture(scope="module")
def stack(infra: Infra, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The whole pipeline as real processes, isolated by a topic prefix and a database of its own."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    prefix = unique_prefix(name)
    s = build_stack(infra.kafka, infra.mongo_url, prefix)
    s.start(*s.processes)
    try:
        yield s
    finally:
        s.stop()
