"""Every Kafka client's connection, from one function of the settings.

``connection_params(settings.kafka)`` is the only place that turns ``MODELYARD_KAFKA__*`` into
connection arguments: bootstrap servers, security protocol, SASL mechanism and credentials, and the
TLS context (CA file, optional client certificate and key, hostname check). The producers,
consumers, admin clients, compacted-topic views and listeners are built by ``make_producer``,
``make_consumer`` and ``make_admin`` on top of it; the FastStream broker gets the same parameters
in FastStream's form from ``broker_params``. A client built any other way would miss the credentials
on a secured cluster.

The password is a ``SecretStr`` in the settings; it is revealed only here, into the client.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from .settings import KafkaSettings

_FASTSTREAM_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def connection_params(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka's connection arguments (producer, consumer and admin client take the same ones)."""
    params: dict[str, Any] = {"bootstrap_servers": kafka.bootstrap_servers,
                              "security_protocol": kafka.security_protocol}
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        params["ssl_context"] = _ssl_context(kafka)
    if kafka.sasl_mechanism is not None:
        assert kafka.sasl_password is not None  # KafkaSettings refuses SASL without credentials
        params.update(sasl_mechanism=kafka.sasl_mechanism, sasl_plain_username=kafka.sasl_username,
                      sasl_plain_password=kafka.sasl_password.get_secret_value())
    return params


def _ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    context = create_ssl_context(cafile=kafka.ssl_ca_file, certfile=kafka.ssl_cert_file, keyfile=kafka.ssl_key_file)
    context.check_hostname = kafka.ssl_check_hostname
    return context


def make_producer(kafka: KafkaSettings, **options: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**connection_params(kafka), **options)


def make_consumer(kafka: KafkaSettings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, **connection_params(kafka), **options)


def make_admin(kafka: KafkaSettings, **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_params(kafka), **options)


def broker_params(kafka: KafkaSettings) -> dict[str, Any]:
    """``connection_params`` as FastStream's ``KafkaBroker`` takes them: a security object, which
    FastStream turns back into the same aiokafka arguments for its producer and every subscriber."""
    params = connection_params(kafka)
    security: BaseSecurity | None = None
    use_ssl = "ssl_context" in params
    if "sasl_mechanism" in params:
        security = _FASTSTREAM_SASL[params["sasl_mechanism"]](
            username=params["sasl_plain_username"], password=params["sasl_plain_password"],
            ssl_context=params.get("ssl_context"), use_ssl=use_ssl)
    elif use_ssl:
        security = BaseSecurity(ssl_context=params["ssl_context"], use_ssl=True)
    return {"bootstrap_servers": params["bootstrap_servers"], "security": security}
