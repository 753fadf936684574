"""Unit test (no broker): the pipelined consumer connects with the deployment's Kafka security settings."""

from __future__ import annotations

import ssl

import pytest
from aiokafka import AIOKafkaConsumer
from modelyard_core.bus import Bus
from modelyard_core.settings import KafkaSettings, Settings
from modelyard_events import QueryRouted
from modelyard_inference.pipeline import PipelinedConsumer


class NotConnecting(Exception):
    pass


async def test_the_pipelined_consumer_gets_sasl_and_tls_from_the_settings(monkeypatch):
    started: list[AIOKafkaConsumer] = []

    async def start(self) -> None:  # record the client instead of connecting
        started.append(self)
        raise NotConnecting

    monkeypatch.setattr(AIOKafkaConsumer, "start", start)
    settings = Settings(kafka=KafkaSettings(bootstrap_servers="kafka.example:9094", security_protocol="SASL_SSL",
                                            sasl_mechanism="PLAIN", sasl_username="inference",
                                            sasl_password="pw-inference"))

    async def handle(delivery):  # pragma: no cover - nothing is consumed
        raise AssertionError

    consumer = PipelinedConsumer(Bus(settings, "inference-slm"), "queries.routed.slm", QueryRouted, handle,
                                 group_id="modelyard-inference-slm", concurrency=64)
    with pytest.raises(NotConnecting):
        await consumer.start()
    client = started[0]._client
    assert (client._bootstrap_servers, client._security_protocol, client._sasl_mechanism) == (
        "kafka.example:9094", "SASL_SSL", "PLAIN")
    assert (client._sasl_plain_username, client._sasl_plain_password) == ("inference", "pw-inference")
    assert isinstance(client._ssl_context, ssl.SSLContext) and client._ssl_context.check_hostname is True
    assert started[0]._group_id == "modelyard-inference-slm" and started[0]._max_poll_records == 64
