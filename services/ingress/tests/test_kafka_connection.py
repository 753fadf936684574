"""Unit test (no broker): the reply listener connects with the deployment's Kafka security settings."""

from __future__ import annotations

import ssl

import pytest
from aiokafka import AIOKafkaConsumer
from modelyard_core.settings import KafkaSettings
from modelyard_ingress.replies import OutcomeListener, PendingOutcomes


class NotConnecting(Exception):
    pass


async def test_the_outcome_listener_gets_sasl_and_tls_from_the_settings(monkeypatch):
    started: list[AIOKafkaConsumer] = []

    async def start(self) -> None:  # record the client instead of connecting
        started.append(self)
        raise NotConnecting

    monkeypatch.setattr(AIOKafkaConsumer, "start", start)
    kafka = KafkaSettings(bootstrap_servers="kafka.example:9094", security_protocol="SASL_SSL",
                          sasl_mechanism="SCRAM-SHA-256", sasl_username="ingress", sasl_password="pw-ingress",
                          ssl_check_hostname=False)
    with pytest.raises(NotConnecting):
        await OutcomeListener(kafka, "queries.outcomes", PendingOutcomes(8)).start()
    client = started[0]._client
    assert (client._bootstrap_servers, client._security_protocol, client._sasl_mechanism) == (
        "kafka.example:9094", "SASL_SSL", "SCRAM-SHA-256")
    assert (client._sasl_plain_username, client._sasl_plain_password) == ("ingress", "pw-ingress")
    assert isinstance(client._ssl_context, ssl.SSLContext) and client._ssl_context.check_hostname is False
    assert started[0]._group_id is None  # and its own options are kept
