"""Authentication through the tenant API (keys, JWT exchange, revocation) and role permissions inside one's own tenant.

The key and JWT functions themselves are tested with ``modelyard_tenancy`` (libs/tenancy/tests)."""

from __future__ import annotations

import time

import pytest
from modelyard_tenancy import Principal, Role, Unauthenticated, authenticate, issue_jwt


async def test_missing_or_bad_credentials_are_401(new_tenant, client):
    t = await new_tenant()
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer my_live_nope"},
                    {"Authorization": "Bearer a.b.c"}, {"Authorization": "Bearer garbage"}):
        resp = await client.get(t.path(), headers=headers)
        assert resp.status_code == 401, headers
        assert resp.headers["www-authenticate"] == "Bearer"


async def test_jwt_exchange(new_tenant, client, settings, admin):
    t = await new_tenant()
    resp = await client.post("/v1/auth/token", headers=t.headers)
    assert resp.status_code == 200
    token = resp.json()
    assert (token["tenant_id"], token["role"], token["expires_in"]) == (t.tenant_id, "tenant_admin", settings.jwt_ttl_s)
    jwt_headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await client.get(t.path(), headers=jwt_headers)).status_code == 200
    assert (await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=jwt_headers)).status_code == 201
    # Only API keys are exchanged: not a JWT (which would outlive its key), not the admin token.
    assert (await client.post("/v1/auth/token", headers=jwt_headers)).status_code == 403
    assert (await client.post("/v1/auth/token", headers=admin)).status_code == 403
    expired = issue_jwt(Principal(Role.TENANT_ADMIN, t.tenant_id, "k", "api_key"), secret=settings.jwt_secret, ttl_s=10, now=time.time() - 60)
    assert (await client.get(t.path(), headers={"Authorization": f"Bearer {expired}"})).status_code == 401


async def test_revoked_key_stops_working(new_tenant, client):
    t = await new_tenant()
    created = (await client.post(t.path("/api-keys"), json={"name": "ci", "role": "service"}, headers=t.headers)).json()
    assert created["prefix"] == created["api_key"][:16] and created["role"] == "service"
    key_headers = {"Authorization": f"Bearer {created['api_key']}"}
    assert (await client.get(t.path(), headers=key_headers)).status_code == 200
    listed = (await client.get(t.path("/api-keys"), headers=t.headers)).json()
    assert {k["key_id"] for k in listed["items"]} >= {created["key_id"]}
    assert all("api_key" not in k and "key_hash" not in k for k in listed["items"])
    assert (await client.delete(t.path(f"/api-keys/{created['key_id']}"), headers=t.headers)).status_code == 204
    assert (await client.get(t.path(), headers=key_headers)).status_code == 401
    revoked = [k for k in (await client.get(t.path("/api-keys"), headers=t.headers)).json()["items"] if k["key_id"] == created["key_id"]]
    assert revoked[0]["revoked_at"] is not None
    assert (await client.delete(t.path("/api-keys/no-such-key"), headers=t.headers)).status_code == 404


async def key_for(client, tenant, role: str) -> dict[str, str]:
    created = (await client.post(tenant.path("/api-keys"), json={"role": role}, headers=tenant.headers)).json()
    return {"Authorization": f"Bearer {created['api_key']}"}


async def test_member_reads_but_cannot_write(new_tenant, client):
    t = await new_tenant()
    agent = (await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=t.headers)).json()
    member = await key_for(client, t, "member")
    assert (await client.get(t.path(), headers=member)).status_code == 200
    assert (await client.get(t.path(f"/agents/{agent['agent_id']}"), headers=member)).status_code == 200
    assert (await client.get(t.path("/quotas"), headers=member)).status_code == 200
    denied = [
        await client.post(t.path("/agents"), json={"name": "b", "agent_type": "bot"}, headers=member),
        await client.patch(t.path(f"/agents/{agent['agent_id']}"), json={"name": "renamed"}, headers=member),
        await client.delete(t.path(f"/agents/{agent['agent_id']}"), headers=member),
        await client.post(t.path("/tickets"), json={"title": "x"}, headers=member),
        await client.patch(t.path(), json={"branding": {"display_name": "x"}}, headers=member),
        await client.get(t.path("/api-keys"), headers=member),
        await client.post(t.path("/api-keys"), json={"role": "tenant_admin"}, headers=member),
        await client.get(t.path("/export"), headers=member),
    ]
    assert [r.status_code for r in denied] == [403] * len(denied)
    assert all(r.json()["error"] == "forbidden" for r in denied)
    assert (await client.get(t.path(f"/agents/{agent['agent_id']}"), headers=t.headers)).json() == agent


async def test_service_role_writes_work_items_only(new_tenant, client):
    t = await new_tenant()
    service = await key_for(client, t, "service")
    assert (await client.post(t.path("/tickets"), json={"title": "from upstream"}, headers=service)).status_code == 201
    assert (await client.post(t.path("/documents"), json={"title": "log", "content": "..."}, headers=service)).status_code == 201
    assert (await client.post(t.path("/agents"), json={"name": "a", "agent_type": "bot"}, headers=service)).status_code == 403
    assert (await client.post(t.path("/roles"), json={"name": "r"}, headers=service)).status_code == 403


async def test_authenticate_function_for_other_apps(new_tenant, mongo_db, settings):
    t = await new_tenant()
    p = await authenticate(t.api_key, mongo_db, admin_token=settings.admin_token, jwt_secret=settings.jwt_secret)
    assert (p.role, p.tenant_id, p.via) == (Role.TENANT_ADMIN, t.tenant_id, "api_key")
    admin = await authenticate(settings.admin_token, mongo_db, admin_token=settings.admin_token, jwt_secret=settings.jwt_secret)
    assert admin.is_platform_admin and admin.tenant_id is None
    with pytest.raises(Unauthenticated):
        await authenticate(t.api_key + "x", mongo_db, admin_token=settings.admin_token, jwt_secret=settings.jwt_secret)


async def test_openapi_and_docs_are_served(client):
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/tenants/{tenant_id}/agents/{resource_id}" in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
