"""Webhooks end to end (issue 20): tenant events to a real HTTP receiver, signed, retried, ordered, parked,
replayed.

The receiver is a small HTTP server this test starts on a free port; it verifies every delivery's
signature with the Standard Webhooks reference library and fails on purpose (500s, answers slower
than the dispatcher waits) where a test asks it to. Everything else is real: the tenant API, metering
and the dispatcher (`modelyard webhooks`) as processes on the real broker and database, with retry
times in seconds instead of hours (``MODELYARD_WEBHOOKS__*``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn
from modelyard_events import UsageRecorded, WebhookParked
from modelyard_harness import ADMIN, Stack, TopicReader, build_stack, create_tenant, free_port, modelyard_command, produce_raw, unique_prefix
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

pytestmark = pytest.mark.system

DISPATCH = {"MODELYARD_WEBHOOKS__ALLOW_HTTP_LOCALHOST": "true", "MODELYARD_WEBHOOKS__RETRY_BASE_S": "0.3",
            "MODELYARD_WEBHOOKS__RETRY_FOR_S": "4", "MODELYARD_WEBHOOKS__TIMEOUT_S": "1", "MODELYARD_WEBHOOKS__POLL_S": "0.2",
            "MODELYARD_FLUSH_MS": "200"}


@dataclass
class Received:
    webhook_id: str
    body: dict
    raw: str
    headers: dict[str, str]
    at: float


@dataclass
class Receiver:
    """The tenant's systems: one route per endpoint name, each with a secret and a behaviour."""

    port: int
    secrets: dict[str, list[str]] = field(default_factory=dict)  # endpoint name -> secrets it accepts
    behaviour: dict[str, str] = field(default_factory=dict)  # "ok", "flaky" (500 twice per id), "slow", "error"
    got: dict[str, list[Received]] = field(default_factory=lambda: defaultdict(list))  # verified deliveries
    tries: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    forged: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hook/{name}"

    async def handle(self, request: Request) -> Response:
        name = request.path_params["name"]
        raw = (await request.body()).decode()
        headers = dict(request.headers)
        for secret in self.secrets.get(name, []):
            try:
                Webhook(secret).verify(raw, headers)
                break
            except WebhookVerificationError:
                continue
        else:
            self.forged.append(name)
            return Response(status_code=401)
        wid = headers["webhook-id"]
        self.tries[(name, wid)] += 1
        mode = self.behaviour.get(name, "ok")
        if mode == "slow":
            await asyncio.sleep(3)
            return Response(status_code=200)
        if mode == "error" or (mode == "flaky" and self.tries[(name, wid)] <= 2):
            return Response(status_code=500)
        self.got[name].append(Received(wid, json.loads(raw), raw, headers, time.monotonic()))
        return Response(status_code=204)

    async def wait(self, name: str, predicate, timeout_s: float = 30.0, what: str = "deliveries"):
        deadline = time.monotonic() + timeout_s
        while not (value := predicate(self.got[name])):
            assert time.monotonic() < deadline, f"receiver {name}: no {what} within {timeout_s}s; got {self.got[name]}"
            await asyncio.sleep(0.05)
        return value


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(free_port())
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/hook/{name}", rec.handle, methods=["POST"])]),
                                           host="127.0.0.1", port=rec.port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield rec
    server.should_exit = True
    await task


@pytest.fixture(scope="module")
def hooks_stack(kafka: str, mongo_url: str) -> AsyncIterator[Stack]:
    s = build_stack(kafka, mongo_url, unique_prefix("webhooks"), extra_env=DISPATCH)
    for name in ("router", "inference-slm", "inference-llm"):  # queries are not needed here: usage is published directly
        del s.processes[name]
    s.add("webhooks", ["webhooks"], "/readyz")
    with s.running():
        yield s


async def register(stack: Stack, tenant: dict, rec: Receiver, name: str, events: list[str]) -> dict:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http:
        resp = await http.post(f"/v1/tenants/{tenant['tenant_id']}/webhooks", headers=_auth(tenant),
                               json={"url": rec.url(name), "events": events})
        assert resp.status_code == 201, resp.text
    endpoint = resp.json()
    rec.secrets[name] = [endpoint["secret"]]
    return endpoint


def _auth(tenant: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant['api_key']}"}


async def api(stack: Stack, method: str, path: str, headers: dict, **kw) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http:
        return await http.request(method, path, headers=headers, **kw)


def api_calls(tenant_id: str, n: int, tag: str) -> list[UsageRecorded]:
    return [UsageRecorded(tenant_id=tenant_id, query_id=f"{tag}-{i}", model="gpt-4o-mini", model_class="slm", input_tokens=20,
                          output_tokens=10, cost_usd=1e-5, llm_cost_usd=1e-4, latency_ms=15.0) for i in range(n)]


async def publish_usage(stack: Stack, events: list[UsageRecorded]) -> None:
    await produce_raw(stack.kafka, stack.topic("usage.recorded"), [(e.tenant_id.encode(), e.model_dump_json().encode()) for e in events])


async def test_a_tenant_crossing_80_percent_gets_a_signed_quota_warning(hooks_stack, receiver):
    tenant = await create_tenant(hooks_stack.api_url, "Hooked Basic", tier="basic")  # 1,000 API calls a day
    endpoint = await register(hooks_stack, tenant, receiver, "quota", ["quota.warning", "quota.exceeded"])
    await publish_usage(hooks_stack, api_calls(tenant["tenant_id"], 799, "a"))
    await publish_usage(hooks_stack, api_calls(tenant["tenant_id"], 1, "b"))  # the 800th call: 80%
    [warning] = await receiver.wait("quota", lambda got: got, what="the quota warning")
    assert warning.body["type"] == "quota.warning" and warning.body["tenant_id"] == tenant["tenant_id"]
    assert warning.body["data"] == {"metric": "api_calls_per_day", "threshold_pct": 80, "limit": 1000.0, "value": 800.0,
                                    "period": datetime.now(UTC).date().isoformat()}
    assert warning.headers["webhook-id"] == warning.body["id"] and receiver.forged == []
    await publish_usage(hooks_stack, api_calls(tenant["tenant_id"], 200, "c"))  # 100%
    got = await receiver.wait("quota", lambda got: len(got) >= 2 and got, what="the quota exceeded")
    assert [g.body["type"] for g in got] == ["quota.warning", "quota.exceeded"]
    log = (await api(hooks_stack, "GET", f"/v1/tenants/{tenant['tenant_id']}/webhooks/{endpoint['webhook_id']}/deliveries",
                     _auth(tenant))).json()
    assert sorted((d["type"], d["status"], len(d["attempts"])) for d in log["items"]) == [
        ("quota.exceeded", "delivered", 1), ("quota.warning", "delivered", 1)]


async def test_retries_keep_order_then_park_and_replay(hooks_stack, receiver):
    tenant = await create_tenant(hooks_stack.api_url, "Hooked Flaky", tier="basic")
    tid = tenant["tenant_id"]
    receiver.behaviour.update(flaky="flaky", slow="slow")
    flaky = await register(hooks_stack, tenant, receiver, "flaky", ["tier.changed"])
    slow = await register(hooks_stack, tenant, receiver, "slow", ["tier.changed"])
    async with TopicReader(hooks_stack.kafka, hooks_stack.topic("webhooks.parked")) as parked_topic:
        for tier in ("professional", "enterprise"):
            assert (await api(hooks_stack, "PATCH", f"/v1/tenants/{tid}", _auth(tenant), json={"subscription_tier": tier})).status_code == 200
        # Each change fails twice at the flaky receiver; the second waits for the first: the order holds.
        got = await receiver.wait("flaky", lambda got: len(got) >= 2 and got, what="both tier changes")
        assert [(g.body["data"]["from_tier"], g.body["data"]["to_tier"]) for g in got] == [
            ("basic", "professional"), ("professional", "enterprise")]
        assert all(receiver.tries[("flaky", g.webhook_id)] == 3 for g in got)
        log = (await api(hooks_stack, "GET", f"/v1/tenants/{tid}/webhooks/{flaky['webhook_id']}/deliveries", _auth(tenant))).json()
        assert [[a["status_code"] for a in d["attempts"]] for d in log["items"]] == [[500, 500, 204]] * 2

        # The slow receiver never answers in time: retried for the window (4 s here, 24 h by default), then parked.
        records = await parked_topic.wait_for(lambda recs: len(recs) >= 2 and recs, 60, "both slow deliveries parked")
    parked = [WebhookParked.model_validate_json(r.value) for r in records]
    assert {p.endpoint_id for p in parked} == {slow["webhook_id"]} and all(p.attempts >= 3 for p in parked)
    assert all(p.last_error == "timeout after 1 s" for p in parked)
    log = (await api(hooks_stack, "GET", f"/v1/tenants/{tid}/webhooks/{slow['webhook_id']}/deliveries", _auth(tenant))).json()
    assert {d["status"] for d in log["items"]} == {"parked"}

    receiver.behaviour["slow"] = "ok"
    replay = json.loads(_modelyard(hooks_stack, "webhooks", "replay", "--endpoint", slow["webhook_id"]).splitlines()[-1])
    assert (replay["selected"], replay["requeued"]) == (2, 2)
    got = await receiver.wait("slow", lambda got: len(got) >= 2 and got, what="the replayed deliveries")
    assert sorted(g.webhook_id for g in got) == sorted(p.webhook_id for p in parked)
    await _until(lambda: _statuses(hooks_stack, tid, slow, tenant), {"delivered"})
    again = json.loads(_modelyard(hooks_stack, "webhooks", "replay", "--endpoint", slow["webhook_id"]).splitlines()[-1])
    assert (again["requeued"], again["already_delivered"]) == (0, 2)


async def test_rotation_keys_exports_closes_and_deletion(hooks_stack, receiver):
    tenant = await create_tenant(hooks_stack.api_url, "Hooked Lifecycle", tier="professional")
    tid = tenant["tenant_id"]
    events = ["key.created", "key.revoked", "tenant.exported", "tenant.deleted", "billing.month_closed"]
    endpoint = await register(hooks_stack, tenant, receiver, "life", events)
    old_secret = receiver.secrets["life"][0]
    rotated = (await api(hooks_stack, "POST", f"/v1/tenants/{tid}/webhooks/{endpoint['webhook_id']}/rotate-secret",
                         _auth(tenant))).json()
    receiver.secrets["life"] = [rotated["secret"]]  # the receiver switched to the new secret...
    key = (await api(hooks_stack, "POST", f"/v1/tenants/{tid}/api-keys", _auth(tenant), json={"name": "ci", "role": "member"})).json()
    [created] = await receiver.wait("life", lambda got: got, what="key.created")
    # ...while the old one still verifies: both sign during the grace period.
    assert len(created.headers["webhook-signature"].split()) == 2 and Webhook(old_secret).verify(created.raw, created.headers)
    assert created.body["data"] == {"key_id": key["key_id"], "key_name": "ci", "key_role": "member"}
    assert (await api(hooks_stack, "DELETE", f"/v1/tenants/{tid}/api-keys/{key['key_id']}", _auth(tenant))).status_code == 204
    assert (await api(hooks_stack, "GET", f"/v1/tenants/{tid}/export", _auth(tenant))).status_code == 200
    got = await receiver.wait("life", lambda got: len(got) >= 3 and got, what="key.revoked and tenant.exported")
    assert [g.body["type"] for g in got] == ["key.created", "key.revoked", "tenant.exported"]

    # A month closed: a tenant that existed last month (backdated here) hears of its statement.
    from pymongo import AsyncMongoClient
    mongo = AsyncMongoClient(hooks_stack.mongo_url, tz_aware=True)
    try:
        first = datetime(2000, 1, 1, tzinfo=UTC)
        await mongo[hooks_stack.database]["tenants"].update_one({"_id": tid}, {"$set": {
            "created_at": first, "tier_history": [{"tier": "professional", "since": first}]}})
    finally:
        await mongo.close()
    last = _last_month()
    assert (await api(hooks_stack, "POST", f"/v1/billing/{last}/close", ADMIN)).status_code == 200
    got = await receiver.wait("life", lambda got: len(got) >= 4 and got, what="billing.month_closed")
    assert got[3].body["type"] == "billing.month_closed" and got[3].body["data"]["month"] == last
    assert got[3].body["data"]["total_cents"] == 45_000

    assert (await api(hooks_stack, "DELETE", f"/v1/tenants/{tid}", ADMIN)).status_code == 204
    got = await receiver.wait("life", lambda got: len(got) >= 5 and got, what="tenant.deleted")
    assert got[4].body["type"] == "tenant.deleted" and len({g.webhook_id for g in got}) == 5 and receiver.forged == []
    # Told of the deletion, the endpoint (and its secret) went with the tenant.
    mongo = AsyncMongoClient(hooks_stack.mongo_url)
    try:
        await _until(lambda: mongo[hooks_stack.database]["webhook_endpoints"].count_documents({"tenant_id": tid}), 0)
    finally:
        await mongo.close()


async def test_endpoint_urls_are_checked(hooks_stack):
    tenant = await create_tenant(hooks_stack.api_url, "Hooked Urls")
    for url in ("http://hooks.example.com/x", "https://10.1.2.3/x", "ftp://x.example.com/"):
        resp = await api(hooks_stack, "POST", f"/v1/tenants/{tenant['tenant_id']}/webhooks", _auth(tenant),
                         json={"url": url, "events": ["tier.changed"]})
        assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "url"], resp.text
    resp = await api(hooks_stack, "POST", f"/v1/tenants/{tenant['tenant_id']}/webhooks", _auth(tenant),
                     json={"url": "https://hooks.example.com/x", "events": ["no.such.event"]})
    assert resp.status_code == 422
    other = await create_tenant(hooks_stack.api_url, "Hooked Other")
    assert (await api(hooks_stack, "GET", f"/v1/tenants/{tenant['tenant_id']}/webhooks", _auth(other))).status_code == 404


def _last_month() -> str:
    now = datetime.now(UTC)
    return f"{now.year - 1}-12" if now.month == 1 else f"{now.year}-{now.month - 1:02d}"


def _modelyard(stack: Stack, *args: str) -> str:
    done = subprocess.run([modelyard_command(), *args], env=stack.env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _statuses(stack: Stack, tid: str, endpoint: dict, tenant: dict) -> set[str]:
    log = (await api(stack, "GET", f"/v1/tenants/{tid}/webhooks/{endpoint['webhook_id']}/deliveries", _auth(tenant))).json()
    return {d["status"] for d in log["items"]}


async def _until(probe, expected, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (value := await probe()) != expected:
        assert time.monotonic() < deadline, f"still {value!r}, expected {expected!r}"
        await asyncio.sleep(0.1)


