"""Settings of the tenant service (``MODELYARD_<NAME>``, on top of the shared ones)."""

from __future__ import annotations

from modelyard_billing import BillingSettings
from modelyard_hooks import WebhookSettings
from modelyard_tenancy import AuthSettings
from modelyard_usage import COLLECTIONS as USAGE_COLLECTIONS
from pydantic import Field


class TenantServiceSettings(AuthSettings):
    api_host: str = "0.0.0.0"
    api_port: int = Field(default=8080, ge=0, le=65535, description="HTTP port of the tenant API (MODELYARD_API_PORT).")
    jwt_ttl_s: int = Field(default=900, ge=10, le=86_400, description="Lifetime of a JWT minted by POST /v1/auth/token.")
    #: Metering's usage collections: exported, imported and deleted with a tenant. (Metering's dedup
    #: records are not among them: they expire on their own, and keeping them stops a replay from
    #: re-creating a deleted tenant's usage.)
    usage_collections: tuple[str, ...] = USAGE_COLLECTIONS
    #: A tenant's writes are serialised by a lease in MongoDB (FerretDB v1 has no transactions and
    #: loses concurrent $inc updates), so quota counts are exact across replicas.
    lock_lease_s: float = Field(default=30.0, gt=0)
    lock_wait_s: float = Field(default=10.0, gt=0)
    #: How long a request waits for the broker to acknowledge its snapshots before leaving them to the sweeper.
    publish_timeout_s: float = Field(default=5.0, gt=0)
    #: How often snapshots whose publication failed (broker down) are published again.
    outbox_sweep_s: float = Field(default=10.0, gt=0)
    #: Whether this process also runs that sweeper (a second replica may leave it to the first).
    outbox_sweeper: bool = True
    #: The price list and the payment-provider meters (``MODELYARD_BILLING__*``, see ``modelyard_billing.prices``).
    billing: BillingSettings = Field(default_factory=BillingSettings)
    #: What webhook endpoints are accepted and how secrets rotate (``MODELYARD_WEBHOOKS__*``).
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    #: Largest request body accepted (413 above it); an import carries a whole tenant, hence the room.
    api_max_body_bytes: int = Field(default=16 * 2**20, ge=1024)
    #: Brute-force protection of POST /v1/auth/token: failed attempts allowed per presented key id
    #: (its visible prefix) and per source address within the window; then 429 with Retry-After.
    token_max_failures_per_key: int = Field(default=10, ge=1)
    token_max_failures_per_address: int = Field(default=50, ge=1)
    token_failure_window_s: float = Field(default=300.0, gt=0)
    #: Tenants' own model endpoints must be HTTPS; ``http://localhost`` only with this (tests, development).
    model_endpoints_allow_http_localhost: bool = False
