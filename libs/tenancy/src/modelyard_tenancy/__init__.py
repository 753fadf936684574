"""Authentication of tenants for every modelyard HTTP service: API keys, JWTs, the platform administrator.

The tenant service issues keys (``new_api_key``) and JWTs (``issue_jwt``) and stores key hashes in
``API_KEYS``; any service resolves a bearer token with ``Authenticator`` (or the FastAPI dependency
``current_principal``) to a ``Principal``. No service imports another for this.
"""

from .auth import (
    API_KEYS,
    JWT_ALGORITHM,
    JWT_ISSUER,
    KEY_PREFIX,
    TENANT_ROLES,
    VISIBLE_CHARS,
    Authenticator,
    NewKey,
    Principal,
    Role,
    authenticate,
    bearer_scheme,
    current_principal,
    decode_jwt,
    hash_key,
    issue_jwt,
    key_by_hash,
    new_api_key,
)
from .errors import ApiError, Unauthenticated
from .guard import FailureGuard
from .revocations import NoRevocations, RevocationList, Revocations
from .settings import DEV_ADMIN_TOKEN, DEV_JWT_SECRET, AuthSettings

__all__ = [
    "API_KEYS",
    "DEV_ADMIN_TOKEN",
    "DEV_JWT_SECRET",
    "JWT_ALGORITHM",
    "JWT_ISSUER",
    "KEY_PREFIX",
    "TENANT_ROLES",
    "VISIBLE_CHARS",
    "ApiError",
    "AuthSettings",
    "Authenticator",
    "FailureGuard",
    "NewKey",
    "NoRevocations",
    "Principal",
    "RevocationList",
    "Revocations",
    "Role",
    "Unauthenticated",
    "authenticate",
    "bearer_scheme",
    "current_principal",
    "decode_jwt",
    "hash_key",
    "issue_jwt",
    "key_by_hash",
    "new_api_key",
]
