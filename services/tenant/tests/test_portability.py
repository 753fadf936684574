"""Export -> delete -> import round trip, and the import's refusals."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId
from modelyard_events import UsageRecorded


async def fill(client, t, mongo_db, record_usage):
    h = t.headers
    agent = (await client.post(t.path("/agents"), json={"name": "Triage", "agent_type": "incident_specialist", "system_prompt": "p"}, headers=h)).json()
    await client.post(t.path("/roles"), json={"name": "ops", "permissions": ["tickets:write"]}, headers=h)
    await client.post(t.path("/tickets"), json={"title": "down", "assigned_agent_id": agent["agent_id"], "tags": ["p1"]}, headers=h)
    await client.post(t.path("/documents"), json={"title": "runbook", "content": "restart"}, headers=h)
    await client.post(t.path("/documents"), json={"title": "archive", "size_bytes": 5000, "uri": "s3://bucket/a", "metadata": {"k": "v"}}, headers=h)
    await client.patch(t.path(), json={"branding": {"display_name": "Acme"}, "policy": {"cascade_threshold": 0.7}}, headers=h)
    await record_usage([
        UsageRecorded(tenant_id=t.tenant_id, query_id=f"q{i}", model="gpt-4o-mini", model_class="slm", input_tokens=10, output_tokens=5,
                      cost_usd=0.001, llm_cost_usd=0.02, latency_ms=12.0, agent_id=agent["agent_id"])
        for i in range(7)
    ])
    # A document with BSON types JSON lacks (an ObjectId, a date), to show they survive the round trip.
    typed = {"_id": ObjectId(), "tenant_id": t.tenant_id, "month": "2025-01", "closed_at": datetime(2025, 2, 1, tzinfo=UTC), "calls": 7}
    await mongo_db["usage_monthly"].insert_one(typed)
    return typed


async def test_export_delete_import_round_trip(new_tenant, client, admin, mongo_db, record_usage):
    t = await new_tenant(tier="professional", industry="healthcare")
    typed = await fill(client, t, mongo_db, record_usage)
    usage_before = (await client.get(t.path("/usage"), headers=t.headers)).json()
    stats_before = (await client.get(t.path("/routing-stats"), headers=t.headers)).json()
    assert usage_before["totals"]["queries"] == 7
    exported = (await client.get(t.path("/export"), headers=t.headers)).json()
    assert exported["format"] == "modelyard.tenant-export.v1"
    assert [len(exported[k]) for k in ("agents", "roles", "tickets", "documents")] == [1, 1, 1, 2]
    assert {name: len(docs) for name, docs in exported["usage"].items()} == {
        "usage_daily": 1, "usage_tenant_daily": 1, "usage_monthly": 2, "usage_agents": 1
    }
    assert "api_key" not in str(exported) and "key_hash" not in str(exported)

    assert (await client.delete(t.path(), headers=admin)).status_code == 204
    assert (await client.get(t.path(), headers=admin)).status_code == 404

    resp = await client.post("/v1/tenants/import", json=exported, headers=admin)
    assert resp.status_code == 201, resp.text
    result = resp.json()
    assert result["imported"] == {
        "agents": 1, "roles": 1, "tickets": 1, "documents": 2, "usage_daily": 1, "usage_tenant_daily": 1, "usage_monthly": 2, "usage_agents": 1
    }
    assert result["tenant"]["version"] == exported["tenant"]["version"] + 1  # versions keep growing
    assert (await client.get(t.path(), headers=t.headers)).status_code == 401  # old keys were not carried over
    new_headers = {"Authorization": f"Bearer {result['api_key']}"}

    again = (await client.get(t.path("/export"), headers=new_headers)).json()
    for doc in (exported, again):
        doc.pop("exported_at")
        doc["tenant"].pop("version")
        doc["tenant"].pop("updated_at")
    assert again == exported
    stored = await mongo_db["usage_monthly"].find_one({"_id": typed["_id"]})
    assert stored == typed  # dates and ObjectIds keep their BSON types
    assert isinstance(stored["closed_at"], datetime)
    # Metering's read side sees the same usage as before the round trip.
    assert (await client.get(t.path("/usage"), headers=new_headers)).json() == usage_before
    assert (await client.get(t.path("/routing-stats"), headers=new_headers)).json() == stats_before
    # The re-imported tenant works as before: quotas see the imported documents.
    quotas = {q["limit"]: q["current"] for q in (await client.get(t.path("/quotas"), headers=new_headers)).json()["quotas"]}
    assert quotas == {"agents": 1, "tickets_per_month": 1, "storage_mb": 5000 + len("restart"), "api_calls_per_day": 7}


async def test_import_refuses_an_existing_tenant_and_non_admins(new_tenant, client, admin):
    t = await new_tenant()
    exported = (await client.get(t.path("/export"), headers=t.headers)).json()
    assert (await client.post("/v1/tenants/import", json=exported, headers=t.headers)).status_code == 403
    resp = await client.post("/v1/tenants/import", json=exported, headers=admin)
    assert resp.status_code == 409 and resp.json()["tenant_id"] == t.tenant_id


async def test_import_refuses_data_over_the_tier_and_foreign_resources(new_tenant, client, admin):
    t = await new_tenant(tier="professional")
    for i in range(11):
        await client.post(t.path("/agents"), json={"name": f"a{i}", "agent_type": "bot"}, headers=t.headers)
    exported = (await client.get(t.path("/export"), headers=t.headers)).json()
    await client.delete(t.path(), headers=admin)

    as_basic = {**exported, "tenant": {**exported["tenant"], "subscription_tier": "basic"}}
    resp = await client.post("/v1/tenants/import", json=as_basic, headers=admin)
    assert resp.status_code == 409 and resp.json()["exceeded"][0]["limit"] == "agents"

    foreign = {**exported, "agents": [{**exported["agents"][0], "tenant_id": "someone-else"}, *exported["agents"][1:]]}
    resp = await client.post("/v1/tenants/import", json=foreign, headers=admin)
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "agents", 0, "tenant_id"]

    invalid = {**exported, "tenant": {**exported["tenant"], "industry": "mining"}}
    assert (await client.post("/v1/tenants/import", json=invalid, headers=admin)).status_code == 422
    assert (await client.get(t.path(), headers=admin)).status_code == 404  # none of the refused imports wrote it

    assert (await client.post("/v1/tenants/import", json=exported, headers=admin)).status_code == 201


async def test_import_cannot_take_over_another_tenants_documents(new_tenant, client, admin, mongo_db):
    victim = await new_tenant()
    agent = (await client.post(victim.path("/agents"), json={"name": "mine", "agent_type": "bot"}, headers=victim.headers)).json()
    exported = (await client.get(victim.path("/export"), headers=admin)).json()
    # The same documents under a new tenant id: the agent's id is the victim's.
    copy = {
        **exported,
        "tenant": {**exported["tenant"], "tenant_id": "copy-of-victim"},
        "agents": [{**a, "tenant_id": "copy-of-victim", "name": "stolen"} for a in exported["agents"]],
    }
    resp = await client.post("/v1/tenants/import", json=copy, headers=admin)
    assert resp.status_code == 409, resp.text
    assert (await client.get(victim.path(f"/agents/{agent['agent_id']}"), headers=victim.headers)).json() == agent
    assert await mongo_db["tenants"].count_documents({"tenant_id": "copy-of-victim"}) == 0  # the partial import was undone
    assert await mongo_db["agents"].count_documents({"tenant_id": "copy-of-victim"}) == 0
