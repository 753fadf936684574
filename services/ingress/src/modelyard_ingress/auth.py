"""Tenant authentication, exactly as the tenant API does it, with a short memory.

``modelyard_tenancy.Authenticator`` (the tenant API's own) resolves an API key with one MongoDB read. At hundreds of
chat requests per second that read would be most of the ingress's database load, so a resolved
key is remembered for ``ingress_auth_cache_s`` seconds (a ``cachetools.TTLCache`` keyed by the
token's hash, never the token). The revocation list (a view of ``tenants.revocations``) is checked on
every hit, so a revoked key stops working here as soon as its revocation arrives, cache or not; the
TTL only bounds how long a key whose revocation event was lost could linger. Only API keys are
remembered (a JWT is checked without a database read, against the same list); failures never are.
"""

from __future__ import annotations

from cachetools import TTLCache
from modelyard_tenancy import Authenticator, Principal, Revocations, hash_key
from pymongo.asynchronous.database import AsyncDatabase


class CachingAuthenticator(Authenticator):
    def __init__(self, db: AsyncDatabase, *, admin_token: str, jwt_secret: str, ttl_s: float,
                 revocations: Revocations | None = None, max_entries: int = 10_000) -> None:
        super().__init__(db, admin_token=admin_token, jwt_secret=jwt_secret, revocations=revocations)
        self.ttl_s = ttl_s
        self._known: TTLCache[str, Principal] | None = TTLCache(max_entries, ttl_s) if ttl_s > 0 else None

    async def authenticate(self, token: str) -> Principal:
        if self._known is None:
            return await super().authenticate(token)
        key = hash_key(token)
        hit = self._known.get(key)
        if hit is not None:
            if not self.revoked(hit):
                return hit
            del self._known[key]  # revoked since it was cached: ask the database (which refuses it)
        principal = await super().authenticate(token)
        if principal.via == "api_key":  # JWTs and the admin token are checked without a database read anyway
            self._known[key] = principal
        return principal
