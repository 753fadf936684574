"""Tenant authentication, exactly as the tenant API does it, with a short memory.

``modelyard_tenancy.Authenticator`` (the tenant API's own) resolves an API key with one MongoDB read. At hundreds of
chat requests per second that read would be most of the ingress's database load, so a resolved
token is remembered for ``ingress_auth_cache_s`` seconds (keyed by the token's hash, never the
token). A revoked key keeps working here at most that long — the same trade the tenant service
already makes for JWTs, for a much shorter time. Only API keys are remembered (a JWT is checked
without a database read, and must stop working the second it expires); failures never are.
"""

from __future__ import annotations

import time

from modelyard_tenancy import Authenticator, Principal, hash_key
from pymongo.asynchronous.database import AsyncDatabase


class CachingAuthenticator(Authenticator):
    def __init__(self, db: AsyncDatabase, *, admin_token: str, jwt_secret: str, ttl_s: float, max_entries: int = 10_000) -> None:
        super().__init__(db, admin_token=admin_token, jwt_secret=jwt_secret)
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._known: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, token: str) -> Principal:
        if self.ttl_s <= 0:
            return await super().authenticate(token)
        key = hash_key(token)
        now = time.monotonic()
        hit = self._known.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await super().authenticate(token)
        if principal.via != "api_key":
            return principal  # JWTs and the admin token are checked without a database read anyway
        if len(self._known) >= self.max_entries:
            self._known = {k: v for k, v in self._known.items() if v[0] > now}
            if len(self._known) >= self.max_entries:
                self._known.clear()
        self._known[key] = (now + self.ttl_s, principal)
        return principal
