"""Tenant-scoped resources: CRUD, quotas at the limit, and invalid bodies (422, nothing written)."""

from __future__ import annotations

import asyncio

import pytest

SAMPLES = {
    "agents": ({"name": "Triage", "agent_type": "incident_specialist", "system_prompt": "You triage."}, {"system_prompt": "You triage fast."}),
    "roles": ({"name": "operator", "permissions": ["tickets:write"]}, {"description": "runs the pager"}),
    "tickets": ({"title": "Disk full", "priority": "high"}, {"status": "resolved"}),
    "documents": ({"title": "Runbook", "content": "df -h"}, {"content": "df -h; du -sh *"}),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
async def test_crud(new_tenant, client, kind):
    t = await new_tenant()
    create, update = SAMPLES[kind]
    id_field = kind[:-1] + "_id"
    resp = await client.post(t.path(f"/{kind}"), json=create, headers=t.headers)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    rid = created[id_field]
    assert created["tenant_id"] == t.tenant_id and all(created[k] == v for k, v in create.items())

    got = await client.get(t.path(f"/{kind}/{rid}"), headers=t.headers)
    assert got.status_code == 200 and got.json() == created

    patched = await client.patch(t.path(f"/{kind}/{rid}"), json=update, headers=t.headers)
    assert patched.status_code == 200, patched.text
    assert all(patched.json()[k] == v for k, v in update.items())
    assert (await client.get(t.path(f"/{kind}/{rid}"), headers=t.headers)).json() == patched.json()

    listed = (await client.get(t.path(f"/{kind}"), headers=t.headers)).json()
    assert listed["total"] == 1 and listed["items"][0][id_field] == rid

    assert (await client.delete(t.path(f"/{kind}/{rid}"), headers=t.headers)).status_code == 204
    assert (await client.get(t.path(f"/{kind}/{rid}"), headers=t.headers)).status_code == 404
    assert (await client.delete(t.path(f"/{kind}/{rid}"), headers=t.headers)).status_code == 404


async def test_document_size_follows_content(new_tenant, client):
    t = await new_tenant()
    doc = (await client.post(t.path("/documents"), json={"title": "ü", "content": "grüße"}, headers=t.headers)).json()
    assert doc["size_bytes"] == len("grüße".encode())
    doc = (await client.patch(t.path(f"/documents/{doc['document_id']}"), json={"content": "x" * 10}, headers=t.headers)).json()
    assert doc["size_bytes"] == 10
    quotas = (await client.get(t.path("/quotas"), headers=t.headers)).json()
    assert {q["limit"]: q["current"] for q in quotas["quotas"]}["storage_mb"] == 10


async def test_agent_quota_at_the_limit(new_tenant, client):
    t = await new_tenant(tier="basic")
    for i in range(10):
        assert (await client.post(t.path("/agents"), json={"name": f"a{i}", "agent_type": "bot"}, headers=t.headers)).status_code == 201
    resp = await client.post(t.path("/agents"), json={"name": "one too many", "agent_type": "bot"}, headers=t.headers)
    assert resp.status_code == 403
    body = resp.json()
    assert body["error"] == "quota_exceeded"
    assert (body["limit"], body["current"], body["allowed"], body["tier"], body["upgrade_to"]) == ("agents", 10, 10, "basic", "professional")
    assert (await client.get(t.path("/agents"), headers=t.headers)).json()["total"] == 10


async def test_ticket_quota_per_month_at_the_limit(new_tenant, client):
    t = await new_tenant(tier="basic")
    results = []
    for i in range(100):
        results.append((await client.post(t.path("/tickets"), json={"title": f"t{i}"}, headers=t.headers)).status_code)
    assert results == [201] * 100
    # Deleting a ticket does not give the month's quota back: the limit counts tickets opened this month.
    first = (await client.get(t.path("/tickets"), params={"limit": 1}, headers=t.headers)).json()["items"][0]
    assert (await client.delete(t.path(f"/tickets/{first['ticket_id']}"), headers=t.headers)).status_code == 204
    resp = await client.post(t.path("/tickets"), json={"title": "101st"}, headers=t.headers)
    assert resp.status_code == 403
    body = resp.json()
    assert (body["limit"], body["current"], body["allowed"], body["upgrade_to"]) == ("tickets_per_month", 100, 100, "professional")
    assert len(body["period"]) == 7


async def test_storage_quota_at_the_limit(new_tenant, client):
    t = await new_tenant(tier="basic")
    limit = 100 * 1024 * 1024
    big = await client.post(t.path("/documents"), json={"title": "archive", "size_bytes": limit - 10, "uri": "s3://b/a"}, headers=t.headers)
    assert big.status_code == 201, big.text
    exact = await client.post(t.path("/documents"), json={"title": "note", "content": "0123456789"}, headers=t.headers)
    assert exact.status_code == 201  # exactly at the limit is allowed
    over = await client.post(t.path("/documents"), json={"title": "one byte", "content": "x"}, headers=t.headers)
    assert over.status_code == 403
    body = over.json()
    assert (body["limit"], body["current"], body["requested"], body["allowed"], body["upgrade_to"]) == ("storage_mb", limit, 1, limit, "professional")
    # Growing an existing document past the limit is refused too; shrinking one is always allowed.
    note = exact.json()["document_id"]
    assert (await client.patch(t.path(f"/documents/{note}"), json={"content": "0123456789A"}, headers=t.headers)).status_code == 403
    assert (await client.patch(t.path(f"/documents/{note}"), json={"content": "0"}, headers=t.headers)).status_code == 200
    assert (await client.post(t.path("/documents"), json={"title": "fits now", "content": "x"}, headers=t.headers)).status_code == 201


async def test_quota_holds_under_concurrency_across_two_replicas(new_tenant, client, second_replica):
    """Two app instances race 24 creations for 10 agent slots."""
    t = await new_tenant(tier="basic")
    calls = [
        (client if i % 2 else second_replica).post(t.path("/agents"), json={"name": f"r{i}", "agent_type": "bot"}, headers=t.headers)
        for i in range(24)
    ]
    codes = [r.status_code for r in await asyncio.gather(*calls)]
    assert sorted(codes) == [201] * 10 + [403] * 14
    assert (await client.get(t.path("/agents"), headers=t.headers)).json()["total"] == 10


async def test_role_names_are_unique_per_tenant(new_tenant, client):
    a, b = await new_tenant(), await new_tenant()
    assert (await client.post(a.path("/roles"), json={"name": "ops"}, headers=a.headers)).status_code == 201
    assert (await client.post(a.path("/roles"), json={"name": "ops"}, headers=a.headers)).status_code == 409
    assert (await client.post(b.path("/roles"), json={"name": "ops"}, headers=b.headers)).status_code == 201


async def test_deleting_an_agent_unassigns_its_tickets(new_tenant, client):
    t = await new_tenant()
    agent = (await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=t.headers)).json()["agent_id"]
    ticket = (await client.post(t.path("/tickets"), json={"title": "x", "assigned_agent_id": agent}, headers=t.headers)).json()
    assert ticket["assigned_agent_id"] == agent
    await client.delete(t.path(f"/agents/{agent}"), headers=t.headers)
    assert (await client.get(t.path(f"/tickets/{ticket['ticket_id']}"), headers=t.headers)).json()["assigned_agent_id"] is None


INVALID = [
    ("agents", {"agent_type": "bot"}, "name"),  # missing
    ("agents", {"name": "a", "agent_type": "Not A Type"}, "agent_type"),
    ("agents", {"name": "a", "agent_type": "bot", "system_prompt": "x" * 16_001}, "system_prompt"),
    ("agents", {"name": "a", "agent_type": "bot", "colour": "red"}, "colour"),  # unknown field
    ("roles", {"name": "r", "permissions": ["Bad Permission"]}, "permissions"),
    ("tickets", {"title": "t", "priority": "urgent"}, "priority"),
    ("tickets", {"title": ""}, "title"),
    ("documents", {"title": "d"}, None),  # neither content nor size_bytes
    ("documents", {"title": "d", "content": "abc", "size_bytes": 4}, None),
    ("documents", {"title": "d", "size_bytes": -1}, "size_bytes"),
]


@pytest.mark.parametrize(("kind", "body", "field"), INVALID)
async def test_invalid_bodies_are_422_with_field_errors_and_write_nothing(new_tenant, client, kind, body, field):
    t = await new_tenant()
    resp = await client.post(t.path(f"/{kind}"), json=body, headers=t.headers)
    assert resp.status_code == 422
    errors = resp.json()["detail"]
    assert errors and all({"loc", "msg", "type"} <= set(e) for e in errors)
    if field is not None:
        assert any(field in map(str, e["loc"]) for e in errors), errors
    assert (await client.get(t.path(f"/{kind}"), headers=t.headers)).json()["total"] == 0


async def test_invalid_updates_are_422_and_change_nothing(new_tenant, client):
    t = await new_tenant()
    agent = (await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=t.headers)).json()
    path = t.path(f"/agents/{agent['agent_id']}")
    for bad in ({"name": None}, {"use_model_router": "maybe"}, {"owner": "x"}):
        assert (await client.patch(path, json=bad, headers=t.headers)).status_code == 422, bad
    doc = (await client.post(t.path("/documents"), json={"title": "d", "content": "abc"}, headers=t.headers)).json()
    mismatch = await client.patch(t.path(f"/documents/{doc['document_id']}"), json={"size_bytes": 99}, headers=t.headers)
    assert mismatch.status_code == 422 and mismatch.json()["detail"][0]["loc"] == ["body", "size_bytes"]
    assert (await client.get(path, headers=t.headers)).json() == agent
    assert (await client.get(t.path(f"/documents/{doc['document_id']}"), headers=t.headers)).json() == doc


async def test_ticket_cannot_reference_another_tenants_agent(new_tenant, client):
    a, b = await new_tenant(), await new_tenant()
    foreign = (await client.post(b.path("/agents"), json={"name": "b", "agent_type": "bot"}, headers=b.headers)).json()["agent_id"]
    resp = await client.post(a.path("/tickets"), json={"title": "x", "assigned_agent_id": foreign}, headers=a.headers)
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "assigned_agent_id"]
    assert (await client.get(a.path("/tickets"), headers=a.headers)).json()["total"] == 0


async def test_invalid_tenant_bodies(client, admin, new_tenant):
    good = {"organization_name": "A", "admin_email": "a@b.co", "industry": "tech", "subscription_tier": "basic"}
    for field, value in (("industry", "mining"), ("subscription_tier", "gold"), ("admin_email", "not-an-email"), ("organization_name", "")):
        resp = await client.post("/v1/tenants", json={**good, field: value}, headers=admin)
        assert resp.status_code == 422 and any(field in e["loc"] for e in resp.json()["detail"]), (field, resp.text)
    t = await new_tenant()
    for patch in ({"policy": {"cascade_threshold": 2}}, {"branding": {"primary_color": "red"}}, {"policy": {"min_class": "llm_plus", "max_class": "slm"}}):
        assert (await client.patch(t.path(), json=patch, headers=t.headers)).status_code == 422, patch
    assert (await client.get(t.path(), headers=t.headers)).json()["version"] == t.body["version"]
