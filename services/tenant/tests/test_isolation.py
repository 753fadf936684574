"""The isolation matrix: every endpoint, called with another tenant's API key and JWT, is denied
(404 for the other tenant's things, 403 for platform-only endpoints) and the other tenant's data is
unchanged afterwards."""

from __future__ import annotations

import pytest

BODIES = {
    "agents": {"name": "intruder", "agent_type": "bot"},
    "roles": {"name": "intruder"},
    "tickets": {"title": "intruder"},
    "documents": {"title": "intruder", "content": "x"},
}
PATCHES = {"agents": {"name": "pwned"}, "roles": {"name": "pwned"}, "tickets": {"title": "pwned"}, "documents": {"title": "pwned"}}


async def populated(new_tenant, client):
    t = await new_tenant(tier="professional")
    ids = {}
    for kind, body in BODIES.items():
        ids[kind] = (await client.post(t.path(f"/{kind}"), json=body, headers=t.headers)).json()[kind[:-1] + "_id"]
    ids["key"] = (await client.post(t.path("/api-keys"), json={"role": "member"}, headers=t.headers)).json()["key_id"]
    return t, ids


def endpoint_matrix(victim, ids, export_body):
    """(method, path, json body, expected status) for every endpoint of the API, aimed at ``victim``."""
    v = victim.path
    calls = [
        ("GET", v(), None, 404),
        ("PATCH", v(), {"branding": {"display_name": "pwned"}}, 404),
        ("PATCH", v(), {"subscription_tier": "basic"}, 404),
        ("DELETE", v(), None, 404),
        ("GET", v("/quotas"), None, 404),
        ("GET", v("/export"), None, 404),
        ("GET", v("/api-keys"), None, 404),
        ("POST", v("/api-keys"), {"role": "tenant_admin"}, 404),
        ("DELETE", v(f"/api-keys/{ids['key']}"), None, 404),
        ("GET", "/v1/tenants", None, 403),
        ("POST", "/v1/tenants", {"organization_name": "x", "admin_email": "a@b.co", "industry": "tech", "subscription_tier": "basic"}, 403),
        ("POST", "/v1/tenants/import", export_body, 403),
    ]
    for kind, body in BODIES.items():
        rid = ids[kind]
        calls += [
            ("GET", v(f"/{kind}"), None, 404),
            ("POST", v(f"/{kind}"), body, 404),
            ("GET", v(f"/{kind}/{rid}"), None, 404),
            ("PATCH", v(f"/{kind}/{rid}"), PATCHES[kind], 404),
            ("DELETE", v(f"/{kind}/{rid}"), None, 404),
        ]
    return calls


async def snapshot_of(client, admin, tenant):
    export = (await client.get(tenant.path("/export"), headers=admin)).json()
    export.pop("exported_at")
    keys = (await client.get(tenant.path("/api-keys"), headers=admin)).json()
    return export, keys


@pytest.mark.parametrize("credential", ["api_key", "jwt"])
async def test_every_endpoint_denies_another_tenant(new_tenant, client, admin, credential):
    attacker, _ = await populated(new_tenant, client)
    victim, ids = await populated(new_tenant, client)
    if credential == "jwt":
        token = (await client.post("/v1/auth/token", headers=attacker.headers)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
    else:
        headers = attacker.headers
    before = await snapshot_of(client, admin, victim)
    export_body = before[0] | {"exported_at": "2025-01-01T00:00:00Z"}

    results = []
    for method, path, body, expected in endpoint_matrix(victim, ids, export_body):
        resp = await client.request(method, path, json=body, headers=headers)
        results.append((method, path, resp.status_code, expected))
        if expected == 404:
            assert victim.tenant_id not in resp.text, (method, path)  # nothing about the tenant leaks
    wrong = [r for r in results if r[2] != r[3]]
    assert not wrong, wrong
    assert len(results) == 32

    # The victim's resources addressed through the attacker's own tenant path are not found either.
    for kind in BODIES:
        rid = ids[kind]
        for method, body in (("GET", None), ("PATCH", PATCHES[kind]), ("DELETE", None)):
            resp = await client.request(method, attacker.path(f"/{kind}/{rid}"), json=body, headers=headers)
            assert resp.status_code == 404, (kind, method, resp.text)
    resp = await client.delete(attacker.path(f"/api-keys/{ids['key']}"), headers=headers)
    assert resp.status_code == 404

    assert await snapshot_of(client, admin, victim) == before


async def test_a_nonexistent_tenant_looks_the_same_as_a_foreign_one(new_tenant, client):
    attacker = await new_tenant()
    victim = await new_tenant()
    foreign = await client.get(victim.path("/agents"), headers=attacker.headers)
    missing = await client.get("/v1/tenants/does-not-exist/agents", headers=attacker.headers)
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
