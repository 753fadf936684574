"""Without transactions, interrupted multi-document operations are finished later: a deletion by the
sweeper, an import by posting the same document again."""

from __future__ import annotations

from modelyard_tenant.outbox import agent_ref, tenant_ref
from modelyard_tenant.store import DELETING


async def test_sweeper_finishes_an_interrupted_deletion(new_tenant, client, app, mongo_db, settings, topic_reader):
    t = await new_tenant()
    agent = (await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=t.headers)).json()["agent_id"]
    await client.post(t.path("/tickets"), json={"title": "x"}, headers=t.headers)
    service = app.state.service
    # What a crash right after the deletion started leaves: intents recorded, tenant marked, nothing deleted.
    data = service.data(t.tenant_id)
    await service.events.record(data, [tenant_ref(t.tenant_id), agent_ref(agent)])
    await data.tenant.update({"_id": t.tenant_id}, {"$set": {"lifecycle": DELETING}})
    assert (await client.get(t.path(), headers=t.headers)).status_code == 404  # already invisible

    await service.sweep(older_than_s=0)
    for name in ("tenants", "agents", "tickets", "api_keys", "tenant_outbox"):
        assert await mongo_db[name].count_documents({"tenant_id": t.tenant_id}) == 0, name
    key = f"{t.tenant_id}/{agent}"
    records = await topic_reader(settings.topics.name("tenant_agents"), lambda rs: any(r.key == key.encode() and r.value is None for r in rs))
    assert records


async def test_an_interrupted_import_is_completed_by_importing_again(new_tenant, client, admin, app):
    t = await new_tenant()
    await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=t.headers)
    exported = (await client.get(t.path("/export"), headers=t.headers)).json()
    await client.delete(t.path(), headers=admin)
    # A crash mid-import leaves the tenant document in "importing": invisible, and not a conflict.
    data = app.state.service.data(t.tenant_id)
    await data.tenant.put(t.tenant_id, {**exported["tenant"], "lifecycle": "importing"})
    assert (await client.get(t.path(), headers=admin)).status_code == 404
    resp = await client.post("/v1/tenants/import", json=exported, headers=admin)
    assert resp.status_code == 201, resp.text
    assert (await client.get(t.path("/agents"), headers=admin)).json()["total"] == 1
