"""Unit test (no broker): the reply listener connects with the deployment's Kafka security settings."""

from __future__ import annotations

import ssl

from modelyard_core.settings import KafkaSettings
from modelyard_ingress.replies import OutcomeListener, PendingOutcomes


async def test_the_outcome_listener_gets_sasl_and_tls_from_the_settings():
    kafka = KafkaSettings(bootstrap_servers="kafka.example:9094", security_protocol="SASL_SSL",
                          sasl_mechanism="SCRAM-SHA-256", sasl_username="ingress", sasl_password="pw-ingress",
                          ssl_check_hostname=False)
    consumer = OutcomeListener(kafka, "queries.outcomes", PendingOutcomes(8)).new_consumer()  # what start() starts
    client = consumer._client
    assert (client._bootstrap_servers, client._security_protocol, client._sasl_mechanism) == (
        "kafka.example:9094", "SASL_SSL", "SCRAM-SHA-256")
    assert (client._sasl_plain_username, client._sasl_plain_password) == ("ingress", "pw-ingress")
    assert isinstance(client._ssl_context, ssl.SSLContext) and client._ssl_context.check_hostname is False
    assert consumer._group_id is None  # and its own options are kept
