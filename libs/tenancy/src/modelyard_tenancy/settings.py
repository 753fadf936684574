"""The settings every service that authenticates tenants shares (``MODELYARD_ADMIN_TOKEN``, ``MODELYARD_JWT_SECRET``).

The tenant service signs JWTs with ``jwt_secret``; the ingress reads the same variables, so a JWT
minted by the tenant API is accepted there.
"""

from __future__ import annotations

from modelyard_core.settings import Settings
from pydantic import Field

#: Documented development defaults; the services log a warning when they run with either of them.
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_JWT_SECRET = "modelyard-dev-jwt-secret-change-me-in-production"


class AuthSettings(Settings):
    admin_token: str = Field(default=DEV_ADMIN_TOKEN, min_length=8, description="Bearer token of the platform administrator.")
    jwt_secret: str = Field(default=DEV_JWT_SECRET, min_length=32, description="HS256 key that signs tenant JWTs.")
