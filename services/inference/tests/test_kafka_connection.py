"""Unit test (no broker): the pipelined consumer connects with the deployment's Kafka security settings."""

from __future__ import annotations

import ssl

from modelyard_core.bus import Bus
from modelyard_core.settings import KafkaSettings, Settings
from modelyard_events import QueryRouted
from modelyard_inference.pipeline import PipelinedConsumer


async def test_the_pipelined_consumer_gets_sasl_and_tls_from_the_settings():
    settings = Settings(kafka=KafkaSettings(bootstrap_servers="kafka.example:9094", security_protocol="SASL_SSL",
                                            sasl_mechanism="PLAIN", sasl_username="inference",
                                            sasl_password="pw-inference"))

    async def handle(delivery):  # pragma: no cover - nothing is consumed
        raise AssertionError

    pipeline = PipelinedConsumer(Bus(settings, "inference-slm"), "queries.routed.slm", QueryRouted, handle,
                                 group_id="modelyard-inference-slm", concurrency=64)
    consumer = pipeline.new_consumer()  # what start() starts
    client = consumer._client
    assert (client._bootstrap_servers, client._security_protocol, client._sasl_mechanism, client._sasl_plain_username,
            client._sasl_plain_password) == ("kafka.example:9094", "SASL_SSL", "PLAIN", "inference", "pw-inference")
    assert isinstance(client._ssl_context, ssl.SSLContext) and client._ssl_context.check_hostname is True
    assert consumer._group_id == "modelyard-inference-slm" and consumer._max_poll_records == 64
