"""The secured deployment the security tests share (one per session: starting it costs ~20 s).

Every service runs as its own Kafka principal on the SASL_SSL broker with exactly the ACLs
``modelyard kafka acls`` generates for the deployment's prefix, a non-default admin token and JWT
secret, and small body limits. Tests register every secret they see in ``secrets`` so the last test
of ``test_security_http`` can scan the services' logs for all of them.
"""

from __future__ import annotations

import secrets as random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from modelyard_core import acls
from modelyard_core.settings import Topics
from modelyard_harness import SecuredKafka, Stack, create_tenant, drop_run, secured_stack, unique_prefix


@dataclass
class SecuredDeployment:
    kafka: SecuredKafka
    stack: Stack
    ingress_url: str
    admin_token: str
    secrets: set[str] = field(default_factory=set)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    async def tenant(self, name: str) -> dict:
        created = await create_tenant(self.api_url, name, headers=self.admin)
        self.secrets.add(created["api_key"])
        return created

    async def key(self, tenant_id: str, token: str, role: str = "tenant_admin") -> dict:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=10) as http:
            resp = await http.post(f"/v1/tenants/{tenant_id}/api-keys", headers={"Authorization": f"Bearer {token}"},
                                   json={"name": f"{role} key", "role": role})
        resp.raise_for_status()
        self.secrets.add(resp.json()["api_key"])
        return resp.json()

    async def jwt(self, api_key: str) -> str:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=10) as http:
            resp = await http.post("/v1/auth/token", headers={"Authorization": f"Bearer {api_key}"})
        resp.raise_for_status()
        self.secrets.add(resp.json()["access_token"])
        return resp.json()["access_token"]


@pytest.fixture(scope="session")
async def secured_deployment(secured_kafka: SecuredKafka, mongo_url: str) -> AsyncIterator[SecuredDeployment]:
    prefix = unique_prefix("secured")
    await acls.apply(secured_kafka.settings("admin"), acls.bindings(Topics(prefix=prefix)))
    admin_token, jwt_secret = random.token_urlsafe(24), random.token_urlsafe(40)
    stack, ingress_url = secured_stack(secured_kafka, mongo_url, prefix, extra_env={
        "MODELYARD_ADMIN_TOKEN": admin_token,
        "MODELYARD_JWT_SECRET": jwt_secret,
        "MODELYARD_API_MAX_BODY_BYTES": "65536",
        "MODELYARD_INGRESS_MAX_BODY_BYTES": "65536",
        # The fuzz run sends hundreds of bad tokens from this address; the address limit has its own test.
        "MODELYARD_TOKEN_MAX_FAILURES_PER_ADDRESS": "1000000",
        "MODELYARD_LOG_LEVEL": "DEBUG",  # the most a log could ever say, for the secrets scan
    })
    deployment = SecuredDeployment(secured_kafka, stack, ingress_url, admin_token,
                                   {admin_token, jwt_secret, *secured_kafka.passwords.values()})
    try:
        stack.start(*stack.processes)
        yield deployment
    finally:
        stack.stop()
        await drop_run(secured_kafka.settings("admin"), prefix, mongo_url, stack.database)
