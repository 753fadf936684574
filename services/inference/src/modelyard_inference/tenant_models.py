"""Bring your own model: a tenant's own endpoint for a model class answers that tenant's queries of it.

The endpoints come with the tenant snapshot (the compacted ``tenants.snapshots`` view every worker
holds: no database read per query), their API keys sealed with the master key, opened here once per
endpoint. Each endpoint gets a ``Backend`` of its own — its own HTTP client, retries and circuit
breaker — so a broken tenant endpoint opens only its own circuit and fails only that tenant's
queries; the platform's backend and every other tenant are untouched. A call there is priced with the
tenant's prices and metered as tenant-paid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from modelyard_core.secrets import SecretBox, SecretUnreadable
from modelyard_core.views import CompactedTopicView
from modelyard_events import QueryRouted, TenantEndpoint, TenantSnapshot

from .backend import Backend
from .settings import InferenceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OwnModel:
    """Where a tenant's query goes instead of the pool's backend."""

    endpoint: TenantEndpoint
    backend: Backend | None  # None: the key could not be opened
    problem: str | None = None

    @property
    def model(self) -> str:
        return self.endpoint.model

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        e = self.endpoint
        return (input_tokens * e.input_usd_per_m + output_tokens * e.output_usd_per_m) / 1_000_000

    def describe(self, error: str) -> str:
        return f"the tenant's own endpoint for class {self.endpoint.model_class.value} ({self.endpoint.base_url}, model " \
               f"{self.endpoint.model}) failed: {error}"


class TenantModels:
    def __init__(self, settings: InferenceSettings, tenants: CompactedTopicView[TenantSnapshot], box: SecretBox) -> None:
        self.settings = settings
        self.tenants = tenants
        self.box = box
        #: endpoint id → (its snapshot form, its route): rebuilt when the endpoint changes.
        self._routes: dict[str, tuple[TenantEndpoint, OwnModel]] = {}
        self._retired: list[Backend] = []

    def for_query(self, r: QueryRouted) -> OwnModel | None:
        tenant = self.tenants.get(r.tenant_id)
        if tenant is None or not tenant.endpoints:
            return None
        endpoint = next((e for e in tenant.endpoints if e.model_class is r.decision.model_class), None)
        if endpoint is None:
            return None
        known = self._routes.get(endpoint.endpoint_id)
        if known is not None and known[0] == endpoint:
            return known[1]
        route = self._build(endpoint)
        if known is not None and known[1].backend is not None:
            self._retired.append(known[1].backend)  # closed at shutdown: calls may still be in flight on it
        self._routes[endpoint.endpoint_id] = (endpoint, route)
        return route

    def _build(self, endpoint: TenantEndpoint) -> OwnModel:
        try:
            key = self.box.open(endpoint.sealed_api_key)
        except SecretUnreadable:
            log.error("the API key of endpoint %s cannot be opened with MODELYARD_MASTER_KEYS", endpoint.endpoint_id)
            return OwnModel(endpoint, None, "its API key cannot be decrypted with this deployment's master keys")
        s = self.settings
        own = s.model_copy(update={
            "backend_base_url": endpoint.base_url, "backend_api_key": key, "backend_models": {},
            "concurrency": s.tenant_endpoint_concurrency, "breaker_failures": s.tenant_endpoint_breaker_failures,
            "backend_attempts": s.tenant_endpoint_attempts, "backend_timeout_s": s.tenant_endpoint_timeout_s,
        })
        return OwnModel(endpoint, Backend(own))

    async def close(self) -> None:
        for backend in [*(r.backend for _, r in self._routes.values() if r.backend is not None), *self._retired]:
            await backend.close()
