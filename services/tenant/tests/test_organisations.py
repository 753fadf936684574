"""Organisations: creation with industry presets, reads, paging, changes, tiers, status, deletion."""

from __future__ import annotations

import pytest
from modelyard_events import CASCADE_THRESHOLDS, TIER_LIMITS, Tier, UsageRecorded

PRESET_EXPECTATIONS = {
    "finance": ("quality", ["SOC2", "PCI-DSS"], False),
    "healthcare": ("quality", ["HIPAA"], False),
    "tech": ("cost", [], True),
    "other": ("balanced", [], False),
}


@pytest.mark.parametrize("industry", sorted(PRESET_EXPECTATIONS))
async def test_create_applies_industry_preset_visible_on_get(client, admin, industry):
    body = {"organization_name": "Acme", "admin_email": "ops@acme.example", "industry": industry, "subscription_tier": "basic"}
    resp = await client.post("/v1/tenants", json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["api_key"].startswith("my_live_") and len(created["api_key"]) > 40

    got = await client.get(f"/v1/tenants/{created['tenant_id']}", headers={"Authorization": f"Bearer {created['api_key']}"})
    assert got.status_code == 200
    tenant = got.json()
    preference, compliance, analytics = PRESET_EXPECTATIONS[industry]
    assert tenant["policy"]["preference"] == preference
    assert tenant["policy"]["cascade_threshold"] == CASCADE_THRESHOLDS[preference]
    assert tenant["settings"]["compliance"] == compliance
    assert tenant["industry_preset"]["compliance"] == compliance
    assert tenant["features"]["advanced_analytics"] is analytics  # basic tier: only the tech preset turns it on
    assert tenant["limits"] == TIER_LIMITS[Tier.BASIC].model_dump()
    assert "api_key" not in tenant


@pytest.mark.parametrize(
    ("tier", "support", "custom_models", "sso", "dedicated"),
    [("basic", "standard", False, False, False), ("professional", "priority", False, False, False), ("enterprise", "24x7", True, True, True)],
)
async def test_tier_features_and_limits(new_tenant, client, tier, support, custom_models, sso, dedicated):
    t = await new_tenant(tier=tier, industry="other")
    got = (await client.get(t.path(), headers=t.headers)).json()
    assert got["features"] == {
        "support_level": support,
        "advanced_analytics": tier != "basic",
        "custom_models": custom_models,
        "sso": sso,
        "dedicated_infrastructure": dedicated,
    }
    assert got["limits"] == TIER_LIMITS[Tier(tier)].model_dump()


async def test_only_the_platform_admin_creates_and_lists(new_tenant, client):
    t = await new_tenant()
    body = {"organization_name": "X", "admin_email": "a@b.co", "industry": "tech", "subscription_tier": "basic"}
    assert (await client.post("/v1/tenants", json=body, headers=t.headers)).status_code == 403
    assert (await client.get("/v1/tenants", headers=t.headers)).status_code == 403
    assert (await client.post("/v1/tenants", json=body)).status_code == 401


async def test_list_pages_through_every_tenant(new_tenant, client, admin):
    created = {(await new_tenant(tier="enterprise")).tenant_id for _ in range(3)}
    seen: list[str] = []
    offset = 0
    while True:
        page = (await client.get("/v1/tenants", params={"offset": offset, "limit": 2, "tier": "enterprise"}, headers=admin)).json()
        assert len(page["items"]) <= 2
        seen += [t["tenant_id"] for t in page["items"]]
        offset += 2
        if offset >= page["total"]:
            break
    assert created <= set(seen)
    assert len(seen) == len(set(seen)) == page["total"]


async def test_patch_settings_branding_policy_budget(new_tenant, client):
    t = await new_tenant(industry="finance")
    patch = {
        "settings": {"timezone": "Europe/Berlin"},
        "branding": {"display_name": "Acme Bank", "primary_color": "#112233"},
        "policy": {"cascade_threshold": 0.8, "max_class": "llm"},
        "budget": {"monthly_cost_usd": 250.0},
    }
    resp = await client.patch(t.path(), json=patch, headers=t.headers)
    assert resp.status_code == 200, resp.text
    got = (await client.get(t.path(), headers=t.headers)).json()
    assert got["settings"]["timezone"] == "Europe/Berlin"
    assert got["settings"]["compliance"] == ["SOC2", "PCI-DSS"]  # untouched by a partial patch
    assert got["branding"] == {"display_name": "Acme Bank", "logo_url": None, "primary_color": "#112233"}
    assert got["policy"]["preference"] == "quality" and got["policy"]["cascade_threshold"] == 0.8 and got["policy"]["max_class"] == "llm"
    assert got["budget"]["monthly_cost_usd"] == 250.0
    assert got["version"] == t.body["version"] + 1


async def test_the_cascade_threshold_follows_the_preference_and_self_consistency_is_a_policy(new_tenant, client):
    t = await new_tenant(industry="other")
    resp = await client.patch(t.path(), json={"policy": {"preference": "quality",
                                                         "self_consistency": {"samples": 3}}}, headers=t.headers)
    assert resp.status_code == 200, resp.text
    policy = (await client.get(t.path(), headers=t.headers)).json()["policy"]
    assert policy["cascade_threshold"] == 0.7
    assert policy["self_consistency"] == {"samples": 3, "temperature": 0.7, "min_agreement": 0.5}
    resp = await client.patch(t.path(), json={"policy": {"self_consistency": {"samples": 9}}}, headers=t.headers)
    assert resp.status_code == 422 and "samples" in resp.text


async def test_a_tenant_selects_a_learned_router_model_and_a_shadow_share(new_tenant, client):
    t = await new_tenant()
    resp = await client.patch(t.path(), json={"policy": {"router_model": "knowledge", "shadow_share": 0.05}}, headers=t.headers)
    assert resp.status_code == 200, resp.text
    got = (await client.get(t.path(), headers=t.headers)).json()["policy"]
    assert (got["router_model"], got["shadow_share"]) == ("knowledge", 0.05)
    for bad in ({"shadow_share": 0.5}, {"router_model": "Not A Name"}):
        resp = await client.patch(t.path(), json={"policy": bad}, headers=t.headers)
        assert resp.status_code == 422 and any(next(iter(bad)) in e["loc"] for e in resp.json()["detail"]), resp.text
    cleared = await client.patch(t.path(), json={"policy": {"router_model": None}}, headers=t.headers)
    assert cleared.json()["policy"]["router_model"] is None and cleared.json()["policy"]["shadow_share"] == 0.05


async def test_custom_models_need_a_tier_that_sells_them(new_tenant, client):
    basic = await new_tenant(tier="basic")
    resp = await client.patch(basic.path(), json={"policy": {"class_models": {"llm": "my-finetune"}}}, headers=basic.headers)
    assert resp.status_code == 403
    assert resp.json()["error"] == "feature_not_in_tier" and resp.json()["upgrade_to"] == "enterprise"
    enterprise = await new_tenant(tier="enterprise")
    resp = await client.patch(enterprise.path(), json={"policy": {"class_models": {"llm": "my-finetune"}}}, headers=enterprise.headers)
    assert resp.status_code == 200 and resp.json()["policy"]["class_models"] == {"llm": "my-finetune"}


async def test_upgrade_then_downgrade_refused_below_usage(new_tenant, client):
    t = await new_tenant(tier="professional")
    for i in range(11):
        resp = await client.post(t.path("/agents"), json={"name": f"a{i}", "agent_type": "incident_specialist"}, headers=t.headers)
        assert resp.status_code == 201, resp.text
    refused = await client.patch(t.path(), json={"subscription_tier": "basic"}, headers=t.headers)
    assert refused.status_code == 409
    body = refused.json()
    assert body["error"] == "downgrade_exceeds_limits"
    assert body["exceeded"] == [{"limit": "agents", "current": 11, "allowed": 10, "unit": "count"}]
    assert (await client.get(t.path(), headers=t.headers)).json()["subscription_tier"] == "professional"

    up = await client.patch(t.path(), json={"subscription_tier": "enterprise"}, headers=t.headers)
    assert up.status_code == 200 and up.json()["limits"]["agents"] == 500
    agents = (await client.get(t.path("/agents"), params={"limit": 1}, headers=t.headers)).json()
    await client.delete(t.path(f"/agents/{agents['items'][0]['agent_id']}"), headers=t.headers)
    down = await client.patch(t.path(), json={"subscription_tier": "basic"}, headers=t.headers)
    assert down.status_code == 200 and down.json()["limits"]["agents"] == 10


async def test_downgrade_refused_when_custom_models_are_in_use(new_tenant, client):
    t = await new_tenant(tier="enterprise")
    await client.patch(t.path(), json={"policy": {"class_models": {"slm": "tiny"}}}, headers=t.headers)
    resp = await client.patch(t.path(), json={"subscription_tier": "professional"}, headers=t.headers)
    assert resp.status_code == 409
    assert [e["limit"] for e in resp.json()["exceeded"]] == ["custom_models"]


async def test_status_is_the_platform_admins_and_suspension_blocks_writes(new_tenant, client, admin):
    t = await new_tenant()
    assert (await client.patch(t.path(), json={"status": "suspended"}, headers=t.headers)).status_code == 403
    assert (await client.patch(t.path(), json={"status": "suspended"}, headers=admin)).json()["status"] == "suspended"
    assert (await client.get(t.path(), headers=t.headers)).status_code == 200
    write = await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=t.headers)
    assert write.status_code == 403
    assert (await client.get(t.path("/agents"), headers=t.headers)).json()["total"] == 0
    await client.patch(t.path(), json={"status": "active"}, headers=admin)
    assert (await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=t.headers)).status_code == 201


async def test_delete_cascades_every_document_and_revokes_keys(new_tenant, client, admin, mongo_db, settings, record_usage):
    t = await new_tenant(tier="professional")
    h = t.headers
    agent = (await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=h)).json()
    await client.post(t.path("/roles"), json={"name": "ops"}, headers=h)
    await client.post(t.path("/tickets"), json={"title": "down", "assigned_agent_id": agent["agent_id"]}, headers=h)
    await client.post(t.path("/documents"), json={"title": "runbook", "content": "restart it"}, headers=h)
    await client.post(t.path("/api-keys"), json={"role": "member"}, headers=h)
    await record_usage([UsageRecorded(tenant_id=t.tenant_id, query_id="q", model="m", model_class="slm", input_tokens=1, output_tokens=1,
                                      cost_usd=0.1, llm_cost_usd=0.2, latency_ms=1.0, agent_id=agent["agent_id"])])
    assert sum([await mongo_db[name].count_documents({"tenant_id": t.tenant_id}) for name in settings.usage_collections]) == 4

    assert (await client.delete(t.path(), headers=h)).status_code == 403  # a tenant admin cannot delete its organisation
    assert (await client.delete(t.path(), headers=admin)).status_code == 204

    for name in ("tenants", "agents", "roles", "tickets", "documents", "api_keys", "tenant_outbox", "tenant_counters", *settings.usage_collections):
        assert await mongo_db[name].count_documents({"tenant_id": t.tenant_id}) == 0, name
    assert (await client.get(t.path(), headers=h)).status_code == 401  # the key went with the tenant
    assert (await client.get(t.path(), headers=admin)).status_code == 404
    assert (await client.delete(t.path(), headers=admin)).status_code == 404
