"""Secrets at rest: webhook secrets and tenants' model API keys are stored sealed, and a master-key
rotation re-seals them all (real database and broker)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from modelyard_core.secrets import DEV_MASTER_KEY, SecretBox, SecretUnreadable
from modelyard_tenant.service import TenantService

from .conftest import make_settings

OWN_KEY = "sk-own-endpoint-0123456789"


async def test_rotation_reseals_every_stored_secret(app, client, new_tenant, mongo_db, kafka, mongo_url):
    t = await new_tenant("enterprise")
    hook = await client.post(t.path("/webhooks"), headers=t.headers, json={"url": "https://hooks.example.com/x", "events": ["tier.changed"]})
    assert hook.status_code == 201, hook.text
    own = await client.put(t.path("/models"), headers=t.headers, json={
        "model_class": "llm", "base_url": "https://llm.acme.example/v1", "model": "acme-70b", "api_key": OWN_KEY,
        "input_usd_per_m": 2.0, "output_usd_per_m": 6.0})
    assert own.status_code == 200, own.text
    assert OWN_KEY not in own.text and OWN_KEY not in (await client.get(t.path("/models"), headers=t.headers)).text
    stored = await mongo_db["tenants"].find_one({"_id": t.tenant_id})
    assert OWN_KEY not in str(stored) and hook.json()["secret"] not in str(await mongo_db["webhook_endpoints"].find_one({"tenant_id": t.tenant_id}))

    new_key = Fernet.generate_key().decode()
    rotating = make_settings(kafka, mongo_url, master_keys=f"{new_key},{DEV_MASTER_KEY}")
    counts = await TenantService(mongo_db, app.state.bus, rotating).reseal_secrets()
    assert counts["webhook_secrets"] >= 1 and counts["model_api_keys"] >= 1

    only_new = SecretBox([new_key])
    sealed_key = (await mongo_db["tenants"].find_one({"_id": t.tenant_id}))["model_endpoints"][0]["sealed_api_key"]
    assert only_new.open(sealed_key) == OWN_KEY
    endpoint = await mongo_db["webhook_endpoints"].find_one({"tenant_id": t.tenant_id})
    assert only_new.open(endpoint["secrets"][0]["sealed"]) == hook.json()["secret"]
    with pytest.raises(SecretUnreadable):  # the old key may go now
        SecretBox([DEV_MASTER_KEY]).open(sealed_key)


async def test_own_models_are_for_tiers_with_custom_models(client, new_tenant):
    t = await new_tenant("professional")
    resp = await client.put(t.path("/models"), headers=t.headers, json={
        "model_class": "slm", "base_url": "https://llm.example.com/v1", "model": "m", "api_key": "k",
        "input_usd_per_m": 0, "output_usd_per_m": 0})
    assert resp.status_code == 403 and resp.json()["error"] == "feature_not_in_tier" and resp.json()["upgrade_to"] == "enterprise"
    bad = await client.put(t.path("/models"), headers=t.headers, json={
        "model_class": "slm", "base_url": "http://llm.example.com/v1", "model": "m", "api_key": "k",
        "input_usd_per_m": 0, "output_usd_per_m": 0})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "base_url"]
