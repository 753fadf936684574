"""Tenant and agent snapshots on the real broker: create, update, delete (tombstone), and the
sweeper that publishes what a request could not while Kafka was unreachable."""

from __future__ import annotations

from modelyard_core.bus import Bus
from modelyard_events import AgentSnapshot, TenantSnapshot
from modelyard_tenant.schemas import TenantCreate
from modelyard_tenant.service import TenantService


def values_for(records, key: str) -> list[bytes | None]:
    return [r.value for r in records if r.key == key.encode()]


def ends_with_tombstone(key: str):
    return lambda records: (vals := values_for(records, key)) and vals[-1] is None


async def test_tenant_snapshots_on_create_update_delete(new_tenant, client, admin, settings, topic_reader):
    t = await new_tenant(tier="basic", industry="finance")
    await client.patch(t.path(), json={"subscription_tier": "professional", "budget": {"monthly_cost_usd": 99.0}}, headers=t.headers)
    await client.delete(t.path(), headers=admin)

    records = await topic_reader(settings.topics.name("tenant_snapshots"), ends_with_tombstone(t.tenant_id))
    values = values_for(records, t.tenant_id)
    assert len(values) == 3
    created, updated = (TenantSnapshot.model_validate_json(v) for v in values[:2])
    assert (created.version, created.tier, created.policy.preference, created.limits.agents) == (1, "basic", "quality", 10)
    assert (updated.version, updated.tier, updated.budget.monthly_cost_usd, updated.limits.agents) == (2, "professional", 99.0, 50)
    assert created.tenant_id == updated.tenant_id == t.tenant_id
    assert values[2] is None
    headers = dict(next(r for r in records if r.key == t.tenant_id.encode()).headers)
    assert headers["ce_type"] == b"modelyard.tenant.snapshot.v1"


async def test_agent_snapshots_on_create_update_delete_and_cascade(new_tenant, client, admin, settings, topic_reader):
    t = await new_tenant()
    a = (await client.post(t.path("/agents"), json={"name": "A", "agent_type": "incident_specialist", "system_prompt": "one"}, headers=t.headers)).json()
    await client.patch(t.path(f"/agents/{a['agent_id']}"), json={"system_prompt": "two"}, headers=t.headers)
    await client.delete(t.path(f"/agents/{a['agent_id']}"), headers=t.headers)
    b = (await client.post(t.path("/agents"), json={"name": "B", "agent_type": "bot"}, headers=t.headers)).json()
    await client.delete(t.path(), headers=admin)  # the cascade tombstones the remaining agent too

    key_a, key_b = f"{t.tenant_id}/{a['agent_id']}", f"{t.tenant_id}/{b['agent_id']}"
    topic = settings.topics.name("tenant_agents")
    records = await topic_reader(topic, lambda rs: ends_with_tombstone(key_a)(rs) and ends_with_tombstone(key_b)(rs))
    values = values_for(records, key_a)
    assert len(values) == 3 and values[2] is None
    prompts = [AgentSnapshot.model_validate_json(v).system_prompt for v in values[:2]]
    assert prompts == ["one", "two"]
    first_b = AgentSnapshot.model_validate_json(values_for(records, key_b)[0])
    assert (first_b.tenant_id, first_b.agent_id, first_b.agent_type) == (t.tenant_id, b["agent_id"], "bot")


async def test_sweeper_publishes_what_a_broker_outage_left_behind(app, mongo_db, settings, topic_reader):
    # A replica whose broker is unreachable: the write succeeds, the snapshot stays in the outbox.
    down = settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"}), "publish_timeout_s": 1.0})
    cut_off = TenantService(mongo_db, Bus(down, "tenant"), down)
    body = TenantCreate(organization_name="Outage", admin_email="a@b.co", industry="tech", subscription_tier="basic")
    doc, _, _ = await cut_off.create_tenant(body)
    tenant_id = doc["tenant_id"]
    assert await mongo_db["tenant_outbox"].count_documents({"tenant_id": tenant_id}) == 1

    published = await app.state.service.sweep(older_than_s=0)
    assert published >= 1
    assert await mongo_db["tenant_outbox"].count_documents({"tenant_id": tenant_id}) == 0
    records = await topic_reader(settings.topics.name("tenant_snapshots"), lambda rs: bool(values_for(rs, tenant_id)))
    snapshot = TenantSnapshot.model_validate_json(values_for(records, tenant_id)[0])
    assert (snapshot.name, snapshot.version) == ("Outage", 1)


async def test_republish_sends_every_live_snapshot_again(new_tenant, client, settings, topic_reader):
    from modelyard_tenant import republish_snapshots

    t = await new_tenant()
    agent = (await client.post(t.path("/agents"), json={"name": "A", "agent_type": "bot"}, headers=t.headers)).json()["agent_id"]
    assert await republish_snapshots(settings) >= 2
    key = f"{t.tenant_id}/{agent}"
    tenants = await topic_reader(settings.topics.name("tenant_snapshots"), lambda rs: len(values_for(rs, t.tenant_id)) == 2)
    agents = await topic_reader(settings.topics.name("tenant_agents"), lambda rs: len(values_for(rs, key)) == 2)
    first, again = (TenantSnapshot.model_validate_json(v) for v in values_for(tenants, t.tenant_id))
    assert first.version == again.version == 1  # the same state, sent again
    assert all(v is not None for v in values_for(agents, key))
