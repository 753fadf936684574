"""Revocation, the audit trail, hostile input and secrets, across processes on the secured deployment.

The last test scans every service's log for every secret the session saw (admin token, JWT secret,
API keys, JWTs, Kafka passwords): it runs after the bus tests and the fuzz run, on the same logs.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from modelyard_core.acls import principal
from modelyard_harness import TopicReader
from modelyard_events import AuditRecorded

pytestmark = pytest.mark.system

REVOCATION_DEADLINE_S = 5.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def acme(secured_deployment) -> dict:
    return await secured_deployment.tenant("Acme Revocations")


async def test_a_revoked_keys_jwt_is_refused_by_the_ingress_and_the_tenant_api_within_seconds(secured_deployment, acme):
    d = secured_deployment
    key = await d.key(acme["tenant_id"], acme["api_key"], role="service")
    token = await d.jwt(key["api_key"])
    async with httpx.AsyncClient(timeout=10) as http:
        # The JWT and the key work everywhere (and the ingress has the key in its cache now).
        assert (await http.get(f"{d.ingress_url}/v1/models", headers=bearer(token))).status_code == 200
        assert (await http.get(f"{d.ingress_url}/v1/models", headers=bearer(key["api_key"]))).status_code == 200
        assert (await http.get(f"{d.api_url}/v1/tenants/{acme['tenant_id']}", headers=bearer(token))).status_code == 200
        revoke = await http.delete(f"{d.api_url}/v1/tenants/{acme['tenant_id']}/api-keys/{key['key_id']}",
                                   headers=bearer(acme["api_key"]))
        assert revoke.status_code == 204
        revoked_at = time.monotonic()
        # Poll the other process until it refuses the JWT: well within the deadline, not at expiry (15 min).
        while (await http.get(f"{d.ingress_url}/v1/models", headers=bearer(token))).status_code != 401:
            assert time.monotonic() - revoked_at < REVOCATION_DEADLINE_S, "the ingress still accepts the revoked key's JWT"
            await asyncio.sleep(0.05)
        refused_after = time.monotonic() - revoked_at
        print(f"\nrevoked key's JWT refused by the ingress {refused_after * 1000:.0f} ms after the revocation")
        # The key itself, although the ingress had cached it, and the JWT at the tenant API.
        assert (await http.get(f"{d.ingress_url}/v1/models", headers=bearer(key["api_key"]))).status_code == 401
        tenant_api = await http.get(f"{d.api_url}/v1/tenants/{acme['tenant_id']}", headers=bearer(token))
        assert tenant_api.status_code == 401 and tenant_api.json()["message"] == "token revoked"
        # Other keys of the tenant are untouched.
        assert (await http.get(f"{d.ingress_url}/v1/models", headers=bearer(acme["api_key"]))).status_code == 200


async def test_deleting_a_tenant_revokes_the_jwts_of_all_its_keys(secured_deployment):
    d = secured_deployment
    doomed = await d.tenant("Doomed Org")
    token = await d.jwt(doomed["api_key"])
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{d.ingress_url}/v1/models", headers=bearer(token))).status_code == 200
        assert (await http.delete(f"{d.api_url}/v1/tenants/{doomed['tenant_id']}", headers=d.admin)).status_code == 204
        deadline = time.monotonic() + REVOCATION_DEADLINE_S
        while (await http.get(f"{d.ingress_url}/v1/models", headers=bearer(token))).status_code != 401:
            assert time.monotonic() < deadline, "a deleted tenant's JWT still works at the ingress"
            await asyncio.sleep(0.05)


async def test_mutating_calls_are_audited_with_actor_target_request_id_address_and_outcome(secured_deployment, acme):
    d = secured_deployment
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    async with httpx.AsyncClient(base_url=d.api_url, timeout=10) as http:
        created = await http.post(f"/v1/tenants/{acme['tenant_id']}/api-keys", json={"name": "audited", "role": "member"},
                                  headers={**bearer(acme["api_key"]), "X-Request-ID": request_id})
        assert created.status_code == 201 and created.headers["x-request-id"] == request_id
        member = created.json()
        d.secrets.add(member["api_key"])
        # A member may not create keys: a refused call is on the record too.
        refused = await http.post(f"/v1/tenants/{acme['tenant_id']}/api-keys", json={"name": "nope", "role": "member"},
                                  headers=bearer(member["api_key"]))
        assert refused.status_code == 403
        trail = await http.get(f"/v1/tenants/{acme['tenant_id']}/audit", params={"action": "create_key"},
                               headers=bearer(acme["api_key"]))
        assert trail.status_code == 200
        events = [AuditRecorded.model_validate(e) for e in trail.json()["items"]]
        ok = next(e for e in events if e.request_id == request_id)
        assert (ok.actor, ok.role, ok.tenant_id, ok.outcome, ok.status_code, ok.source_address, ok.method) == (
            acme["api_key_id"], "tenant_admin", acme["tenant_id"], "success", 201, "127.0.0.1", "POST")
        assert ok.target.endswith(f"/api-keys -> {member['key_id']}")
        bad = next(e for e in events if e.actor == member["key_id"])
        assert (bad.outcome, bad.status_code, bad.reason, bad.role) == ("failure", 403, "forbidden", "member")
        # Filters: time range and outcome; paging.
        failures = await http.get(f"/v1/tenants/{acme['tenant_id']}/audit", headers=bearer(acme["api_key"]),
                                  params={"outcome": "failure", "since": ok.time.isoformat(), "limit": 1})
        assert failures.json()["total"] >= 1 and len(failures.json()["items"]) == 1
        assert all(e["outcome"] == "failure" for e in failures.json()["items"])
        # The platform view has every tenant's calls; a tenant admin may not read it, nor another tenant's.
        platform = await http.get("/v1/audit", params={"action": "create_tenant"}, headers=d.admin)
        assert acme["tenant_id"] in {e["tenant_id"] for e in platform.json()["items"]}
        assert (await http.get("/v1/audit", headers=bearer(acme["api_key"]))).status_code == 403
        other = await d.tenant("Other Auditors")
        assert (await http.get(f"/v1/tenants/{acme['tenant_id']}/audit", headers=bearer(other["api_key"]))).status_code == 404
        assert (await http.get(f"/v1/tenants/{acme['tenant_id']}/audit", headers=bearer(member["api_key"]))).status_code == 403
    # The same events are on the audit topic (read as the platform's admin user).
    async with TopicReader(d.kafka.settings("admin"), d.stack.topic("audit.events")) as topic:
        await topic.wait_for(lambda recs: any(AuditRecorded.model_validate_json(r.value).request_id == request_id for r in recs),
                             20, "the audit event of the key creation")


async def test_hostile_input_is_refused_naming_the_field(secured_deployment, acme):
    d = secured_deployment
    async with httpx.AsyncClient(timeout=20) as http:
        big = await http.post(f"{d.api_url}/v1/tenants/{acme['tenant_id']}/agents", headers=bearer(acme["api_key"]),
                              content=b'{"name": "' + b"x" * 70_000 + b'"}', )
        assert big.status_code == 413 and big.json()["field"] == "body"
        chat = await http.post(f"{d.ingress_url}/v1/chat/completions", headers=bearer(acme["api_key"]),
                               json={"model": "auto", "messages": [{"role": "user", "content": "y" * 70_000}]})
        assert chat.status_code == 413 and chat.json()["error"]["param"] == "body"
        many = await http.post(f"{d.ingress_url}/v1/chat/completions", headers=bearer(acme["api_key"]),
                               json={"model": "auto", "messages": [{"role": "user", "content": "hi"}] * 65})
        assert many.status_code == 422 and many.json()["error"]["param"] == "messages"


async def test_token_issuance_locks_out_a_guessed_key_and_then_an_address(secured_deployment, acme):
    d = secured_deployment
    guessed = "my_live_GUESSING" + "A" * 32
    async with httpx.AsyncClient(base_url=d.api_url, timeout=10) as http:
        statuses = [(await http.post("/v1/auth/token", headers=bearer(guessed + str(i)))).status_code for i in range(11)]
        assert statuses[:10] == [401] * 10 and statuses[10] == 429
        locked = await http.post("/v1/auth/token", headers=bearer(guessed))
        assert locked.status_code == 429 and 0 < int(locked.headers["Retry-After"]) <= 300
        # Another key (other prefix) from the same address still gets its token.
        assert (await http.post("/v1/auth/token", headers=bearer(acme["api_key"]))).status_code == 200
    # Per address: a tenant API process with a low limit for addresses.
    proc = d.stack.add("tenant-guarded", ["tenant"], "/healthz", MODELYARD_TOKEN_MAX_FAILURES_PER_ADDRESS="5",
                       MODELYARD_OUTBOX_SWEEPER="false", **d.kafka.env(principal("tenant")))
    d.stack.start("tenant-guarded")
    guarded = proc.ready_url.removesuffix("/healthz")
    async with httpx.AsyncClient(base_url=guarded, timeout=10) as http:
        for i in range(5):  # five different made-up keys: no single key is over its limit
            assert (await http.post("/v1/auth/token", headers=bearer(f"my_live_{i:08d}{'B' * 32}"))).status_code == 401
        blocked = await http.post("/v1/auth/token", headers=bearer(acme["api_key"]))  # even the right key
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    proc.stop()


async def test_no_secret_appears_in_any_service_log_or_in_the_audit_trail(secured_deployment):
    d = secured_deployment
    # A full scenario ran on this deployment (queries through the pipeline, keys, JWTs, revocations,
    # refused logins, the fuzz run when the whole suite runs); every service wrote its log at DEBUG.
    logs = {p.stem: p for p in d.stack.log_dir.glob("*.log")}
    services = ("tenant", "router", "inference-slm", "inference-llm", "metering", "ingress")
    assert all(logs[name].stat().st_size > 0 for name in services)
    assert len(d.secrets) >= 10  # admin token, JWT secret, six Kafka passwords, keys and JWTs of the tests
    for name, path in sorted(logs.items()):
        text = path.read_text(errors="replace")
        leaked = [s[:6] + "..." for s in d.secrets if s in text]
        assert not leaked, f"{name}.log contains secrets starting {leaked}"
    # Nor does the audit trail, in its collection or on its topic.
    async with httpx.AsyncClient(base_url=d.api_url, timeout=10) as http:
        trail = (await http.get("/v1/audit", params={"limit": 500}, headers=d.admin)).text
    assert '"total":0' not in trail and not [s for s in d.secrets if s in trail]
    async with TopicReader(d.kafka.settings("admin"), d.stack.topic("audit.events")) as topic:
        records = await topic.wait_for(lambda recs: recs if len(recs) >= 5 else None, 20, "audit events")
        assert not [s for s in d.secrets for r in records if s.encode() in r.value]
