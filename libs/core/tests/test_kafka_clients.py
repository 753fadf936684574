"""Unit tests (no broker): every kind of Kafka client gets its connection from the settings.

Each client is built the way the code builds it, from settings with SASL_SSL, SCRAM-SHA-512 and a CA
file made here with ``openssl``; its ``start`` (the first thing that would connect) is replaced by
one that records the client and stops. The test then reads what the client would connect with.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from modelyard_core.admin import ensure_topics
from modelyard_core.bus import Bus
from modelyard_core.kafka_clients import connection_params, make_consumer, make_producer
from modelyard_core.settings import KafkaSettings, Settings
from modelyard_core.views import CompactedTopicView
from modelyard_events import TenantSnapshot

PASSWORD = "s3cret-scram-password"


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and its key (PEM), as a private CA or a client certificate."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    return self_signed(tmp_path, "modelyard-test-ca")[0]


@pytest.fixture
def settings(ca_file: Path) -> Settings:
    return Settings(kafka=KafkaSettings(
        bootstrap_servers="kafka-1.example:9094,kafka-2.example:9094", security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512", sasl_username="modelyard-router", sasl_password=PASSWORD,
        ssl_ca_file=ca_file, ssl_check_hostname=False))


class NotConnecting(Exception):
    """Raised instead of connecting."""


@pytest.fixture
def started(monkeypatch) -> list[Any]:
    """Clients whose ``start`` was called, in order; none of them connects."""
    clients: list[Any] = []

    async def start(self) -> None:
        clients.append(self)
        raise NotConnecting

    for cls in (AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient):
        monkeypatch.setattr(cls, "start", start)
    return clients


def connection(client: Any) -> dict[str, Any]:
    """What an aiokafka producer, consumer or admin client would connect with."""
    inner = client.client if isinstance(client, AIOKafkaProducer) else client._client
    bootstrap = inner._bootstrap_servers  # FastStream passes a list of one string
    return {"bootstrap": ",".join(bootstrap) if isinstance(bootstrap, list) else bootstrap, "protocol": inner._security_protocol,
            "mechanism": inner._sasl_mechanism, "username": inner._sasl_plain_username,
            "password": inner._sasl_plain_password, "ssl": inner._ssl_context}


def assert_secured(client: Any, ca_name: str = "modelyard-test-ca") -> None:
    c = connection(client)
    assert c["bootstrap"] == "kafka-1.example:9094,kafka-2.example:9094"
    assert (c["protocol"], c["mechanism"], c["username"], c["password"]) == (
        "SASL_SSL", "SCRAM-SHA-512", "modelyard-router", PASSWORD)
    assert isinstance(c["ssl"], ssl.SSLContext) and c["ssl"].check_hostname is False
    trusted = [dict(part[0] for part in ca["subject"]).get("commonName") for ca in c["ssl"].get_ca_certs()]
    assert ca_name in trusted


async def test_a_producer_gets_the_connection(settings, started):
    with pytest.raises(NotConnecting):
        await make_producer(settings.kafka).start()
    [producer] = started
    assert isinstance(producer, AIOKafkaProducer)
    assert_secured(producer)


async def test_topic_creation_gets_the_connection(settings, started):
    with pytest.raises(NotConnecting):
        await ensure_topics(settings, ["queries.submitted"])
    [admin] = started
    assert isinstance(admin, AIOKafkaAdminClient)
    assert_secured(admin)


async def test_a_compacted_topic_view_gets_the_connection(settings, started):
    view = CompactedTopicView(settings, "tenants.snapshots", TenantSnapshot, name="test")
    with pytest.raises(NotConnecting):
        await view.start()
    [consumer] = started
    assert isinstance(consumer, AIOKafkaConsumer)
    assert_secured(consumer)


async def test_a_consumer_gets_the_connection_and_keeps_its_own_options(settings, started):
    consumer = make_consumer(settings.kafka, "queries.outcomes", group_id="g", enable_auto_commit=False)
    assert_secured(consumer)
    assert consumer._group_id == "g" and consumer._enable_auto_commit is False


async def test_the_faststream_broker_and_its_subscribers_get_the_connection(settings, started):
    bus = Bus(settings, "router")
    with pytest.raises(NotConnecting):
        await bus.broker.connect()  # FastStream starts its producer first
    [producer] = started
    assert isinstance(producer, AIOKafkaProducer)
    assert_secured(producer)
    # Every subscriber's consumer is built by the broker's builder, with the same parameters.
    builder = bus.broker.config.broker_config.builder
    consumer = builder(group_id="modelyard-router")
    assert_secured(consumer)


async def test_a_client_certificate_and_key_are_loaded(tmp_path, ca_file):
    cert, key = self_signed(tmp_path, "modelyard-router")
    kafka = KafkaSettings(security_protocol="SSL", ssl_ca_file=ca_file, ssl_cert_file=cert, ssl_key_file=key)
    params = connection_params(kafka)
    assert params["security_protocol"] == "SSL" and params["ssl_context"].check_hostname is True
    assert "sasl_mechanism" not in params
    # The key is really read: one that does not belong to the certificate is refused.
    _, other_key = self_signed(tmp_path, "someone-else")
    with pytest.raises(ssl.SSLError):
        connection_params(kafka.model_copy(update={"ssl_key_file": other_key}))


def test_plaintext_is_the_default_and_carries_no_credentials():
    assert connection_params(KafkaSettings(bootstrap_servers="127.0.0.1:9092")) == {
        "bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_each_sasl_mechanism_reaches_the_broker_settings(mechanism):
    bus = Bus(Settings(kafka=KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                                           sasl_username="u", sasl_password=PASSWORD)), "metering")
    builder = bus.broker.config.broker_config.builder
    c = connection(builder(group_id="g"))
    assert (c["protocol"], c["mechanism"], c["username"], c["password"], c["ssl"]) == (
        "SASL_PLAINTEXT", mechanism, "u", PASSWORD, None)


def test_the_password_never_prints(settings, monkeypatch):
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.kafka)
    assert PASSWORD not in settings.model_dump_json()
    assert PASSWORD not in json.dumps(settings.model_dump(mode="json"))
    # Read from the environment the way the services read it, it is still a secret.
    monkeypatch.setenv("MODELYARD_KAFKA__SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("MODELYARD_KAFKA__SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("MODELYARD_KAFKA__SASL_USERNAME", "router")
    monkeypatch.setenv("MODELYARD_KAFKA__SASL_PASSWORD", PASSWORD)
    from_env = Settings()
    assert PASSWORD not in repr(from_env) and PASSWORD not in from_env.model_dump_json()
    assert connection_params(from_env.kafka)["sasl_plain_password"] == PASSWORD


@pytest.mark.parametrize(("fields", "message"), [
    ({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "u"}, "sasl_password"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_password": "p"}, "sasl_mechanism"),
    ({"sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": "p"}, "SASL_PLAINTEXT or SASL_SSL"),
    ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "GSSAPI", "sasl_username": "u", "sasl_password": "p"},
     "sasl_mechanism"),
    ({"security_protocol": "SSLv3"}, "security_protocol"),
    ({"ssl_ca_file": "CA"}, "SSL or SASL_SSL"),
    ({"security_protocol": "SSL", "ssl_ca_file": "/no/such/ca.pem"}, "ssl_ca_file"),
])
def test_an_incomplete_or_unknown_security_setting_is_refused_at_start_up(fields, message, ca_file):
    fields = {k: ca_file if v == "CA" else v for k, v in fields.items()}
    with pytest.raises(ValidationError, match=message):
        KafkaSettings(**fields)


def test_a_key_without_its_certificate_is_refused(tmp_path, ca_file):
    _, key = self_signed(tmp_path, "client")
    with pytest.raises(ValidationError, match="ssl_key_file needs ssl_cert_file"):
        KafkaSettings(security_protocol="SSL", ssl_key_file=key)
