"""Settings of the dashboard (``MODELYARD_<NAME>``, on top of the shared ones).

The dashboard holds no data of its own: it reads the tenant API (``dashboard_api_url``) with the
signed-in user's token, and keeps that token in an encrypted cookie (see ``session``).
"""

from __future__ import annotations

from modelyard_core.settings import Settings
from pydantic import Field, SecretStr


class DashboardSettings(Settings):
    dashboard_host: str = "0.0.0.0"
    dashboard_port: int = Field(default=8082, ge=0, le=65535, description="HTTP port of the dashboard (MODELYARD_DASHBOARD_PORT).")
    dashboard_api_url: str = Field(default="http://127.0.0.1:8080", description="Base URL of the tenant API every number is read from.")
    dashboard_api_timeout_s: float = Field(default=10.0, gt=0, le=120)
    #: Fernet keys (comma-separated; the first encrypts, every one decrypts, so a key can be rotated in).
    #: Unset: a random key per process, with a warning (sessions then end on restart and do not cross replicas).
    dashboard_session_key: SecretStr | None = None
    dashboard_session_ttl_s: int = Field(default=8 * 3600, ge=60, le=30 * 86_400, description="How long a sign-in lasts.")
    #: Mark the session cookie Secure (sent over HTTPS only). On in production, behind TLS.
    dashboard_cookie_secure: bool = False
    #: The origin browsers see (e.g. https://dashboard.example.com) when a proxy rewrites Host; POST forms
    #: must come from it. Unset: the request's own scheme and Host.
    dashboard_public_origin: str | None = None
    dashboard_refresh_s: float = Field(default=3.0, ge=1, le=300, description="How often a page refreshes its live part.")
    #: The overview reads the quotas of at most this many organisations to find those nearest their limits.
    dashboard_quota_scan: int = Field(default=200, ge=1, le=5_000)
