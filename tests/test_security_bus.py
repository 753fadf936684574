"""Authenticated, authorised Kafka: the whole pipeline on a SASL_SSL broker (SCRAM-SHA-512, ACLs
enforced, no plaintext listener), each service as its own principal with only the ACLs generated from
the topology; clients without credentials, with a wrong password, or reaching beyond their ACLs are
refused."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError
from modelyard_core.acls import principal
from modelyard_core.kafka_clients import make_consumer, make_producer
from modelyard_core.settings import KafkaSettings
from modelyard_events import KeyRevoked
from modelyard_usage import TENANT_DAILY
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.system


async def test_every_service_runs_as_its_own_principal_and_a_query_gets_its_outcome(secured_deployment, mongo_url):
    d = secured_deployment
    # Every service process reached ready (the fixture waited) as its own SCRAM user, on SASL_SSL only.
    for name, proc in d.stack.processes.items():
        if name != "simulator":
            assert proc.env["MODELYARD_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
            assert proc.env["MODELYARD_KAFKA__SASL_USERNAME"] == principal(name.split("-")[0])
            assert proc.running(), f"{name} stopped"
    tenant = await d.tenant("Secured Bus Ltd")
    async with httpx.AsyncClient(base_url=d.ingress_url, timeout=60) as http:
        resp = await http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {tenant['api_key']}"},
                               json={"model": "auto", "messages": [{"role": "user", "content": "How do I reset my password?"}]})
    assert resp.status_code == 200, resp.text
    extra = resp.json()["modelyard"]
    assert extra["status"] == "completed" and resp.json()["choices"][0]["message"]["content"]
    # Metering (its own principal) folded the usage into the tenant's day.
    mongo: AsyncMongoClient = AsyncMongoClient(mongo_url)
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while (doc := await mongo[d.stack.database][TENANT_DAILY].find_one({"tenant_id": tenant["tenant_id"]})) is None:
            assert asyncio.get_running_loop().time() < deadline, "metering never recorded the query's usage"
            await asyncio.sleep(0.2)
        assert doc["queries"] == 1
    finally:
        await mongo.close()


async def refused(settings: KafkaSettings, what: str) -> BaseException:
    producer = make_producer(settings, request_timeout_ms=5000, metadata_max_age_ms=5000)
    try:
        await asyncio.wait_for(producer.start(), 20)
    except (KafkaError, OSError, TimeoutError) as exc:
        return exc
    else:
        pytest.fail(f"{what} was let in")
    finally:
        await producer.stop()


async def test_clients_without_credentials_are_refused(secured_kafka):
    k = secured_kafka
    # No TLS, no SASL: the only client listener is SASL_SSL.
    assert isinstance(await refused(KafkaSettings(bootstrap_servers=k.bootstrap), "a plaintext client"),
                      (KafkaConnectionError, TimeoutError, KafkaError))
    # TLS but no SASL.
    await refused(KafkaSettings(bootstrap_servers=k.bootstrap, security_protocol="SSL", ssl_ca_file=k.ca_file),
                  "a client without SASL credentials")
    # A known user with a wrong password.
    await refused(k.settings(principal("router"), password="not-the-password"), "a wrong password")
    # The right password, but a certificate from a CA the client does not trust (no TLS file: system CAs).
    wrong_ca = k.settings(principal("router")).model_copy(update={"ssl_ca_file": None})
    await refused(wrong_ca, "a client that does not verify the broker's certificate against the CA")


async def test_each_principal_is_held_to_its_own_topics(secured_deployment):
    d = secured_deployment
    k = d.kafka
    # The router's principal cannot read usage.recorded (metering's input) ...
    consumer = make_consumer(k.settings(principal("router")), d.stack.topic("usage.recorded"), group_id=None,
                             auto_offset_reset="earliest")
    with pytest.raises(TopicAuthorizationFailedError):
        await consumer.start()
    await consumer.stop()
    # ... and the inference principal cannot write tenants.snapshots (only the tenant service may).
    for service, topic in (("inference", "tenants.snapshots"), ("ingress", "tenants.revocations"),
                           ("router", "usage.recorded")):
        producer = make_producer(k.settings(principal(service)), enable_idempotence=True)
        await producer.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(d.stack.topic(topic), b"{}", key=b"forged")
        finally:
            await producer.stop()
    # A service may not join another service's consumer group either.
    thief = make_consumer(k.settings(principal("ingress")), d.stack.topic("queries.outcomes"),
                          group_id=f"{d.stack.prefix}modelyard-router")
    with pytest.raises(KafkaError):
        await thief.start()
        await asyncio.wait_for(thief.getmany(timeout_ms=5000), 20)
    await thief.stop()
    # While the tenant principal writes its own revocation topic, and the ingress reads it.
    producer = make_producer(k.settings(principal("tenant")), enable_idempotence=True)
    await producer.start()
    try:
        event = KeyRevoked(tenant_id="t-acl", key_id="k-acl", revoked_at="2026-12-01T00:00:00Z")
        await producer.send_and_wait(d.stack.topic("tenants.revocations"), event.model_dump_json().encode(), key=b"k-acl")
    finally:
        await producer.stop()
    reader = make_consumer(k.settings(principal("ingress")), d.stack.topic("tenants.revocations"), group_id=None,
                           auto_offset_reset="earliest")
    await reader.start()
    try:
        deadline = asyncio.get_running_loop().time() + 20
        seen: list[bytes] = []
        while not any(r == b"k-acl" for r in seen):
            assert asyncio.get_running_loop().time() < deadline
            batch = await reader.getmany(timeout_ms=500)
            seen += [rec.key for recs in batch.values() for rec in recs]
    finally:
        await reader.stop()
