"""Who is calling: API keys, JWTs and the platform administrator's token, resolved to a ``Principal``.

The tenant service issues keys and JWTs; every HTTP service (the tenant API, the OpenAI-compatible
ingress) authenticates its callers with this module::

    app.state.authenticator = Authenticator.from_settings(db, settings)

    @app.post("/v1/chat/completions")
    async def chat(principal: Principal = Depends(current_principal)): ...

or, without FastAPI, ``await authenticate(token, db, admin_token=..., jwt_secret=...)``.

* API keys look like ``my_live_<40 random chars>``; only their SHA-256 is stored (they are 240-bit
  random strings, so a slow password hash buys nothing), with an 8-character visible prefix.
* JWTs are HS256 with claims ``tenant_id``, ``role``, ``sub`` (the API key id they were minted
  from), ``iat``, ``exp`` and ``iss``. They are checked without a database read: the signature, and
  the key id against the revocation list (``revocations.RevocationList``, a view of the compacted
  ``tenants.revocations`` topic), so a revoked key's JWTs stop working within about a second, not
  when they expire. A JWT never carries the platform administrator role.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Literal

import jwt
from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .errors import Unauthenticated

if TYPE_CHECKING:
    from pymongo.asynchronous.database import AsyncDatabase

    from .revocations import Revocations
    from .settings import AuthSettings

#: The collection of API keys (written by the tenant service; read here, by hash, to authenticate).
API_KEYS = "api_keys"
KEY_PREFIX = "my_live_"
VISIBLE_CHARS = 8
JWT_ALGORITHM = "HS256"
JWT_ISSUER = "modelyard-tenant"


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    MEMBER = "member"
    SERVICE = "service"


TENANT_ROLES = frozenset({Role.TENANT_ADMIN, Role.MEMBER, Role.SERVICE})


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. ``tenant_id`` is None only for the platform administrator."""

    role: Role
    tenant_id: str | None
    subject: str
    via: Literal["admin_token", "api_key", "jwt"]

    @property
    def is_platform_admin(self) -> bool:
        return self.role is Role.PLATFORM_ADMIN

    def can_see(self, tenant_id: str) -> bool:
        return self.is_platform_admin or self.tenant_id == tenant_id


# --------------------------------------------------------------------------------------------------
# API keys


@dataclass(frozen=True, slots=True)
class NewKey:
    secret: str  # shown to the caller once, never stored
    visible_prefix: str
    key_hash: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> NewKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(30)
    return NewKey(secret, secret[: len(KEY_PREFIX) + VISIBLE_CHARS], hash_key(secret))


async def key_by_hash(db: AsyncDatabase, key_hash: str) -> dict | None:
    """The live (not revoked) API key document with this hash: a read across tenants, by design."""
    return await db[API_KEYS].find_one({"key_hash": key_hash, "revoked_at": None})


# --------------------------------------------------------------------------------------------------
# JWT


def issue_jwt(principal: Principal, *, secret: str, ttl_s: int, now: float | None = None) -> str:
    if principal.role not in TENANT_ROLES or not principal.tenant_id:
        raise ValueError("only a tenant principal can be given a JWT")
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": JWT_ISSUER,
        "sub": principal.subject,
        "tenant_id": principal.tenant_id,
        "role": principal.role.value,
        "iat": issued,
        "exp": issued + ttl_s,
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM)


def decode_jwt(token: str, *, secret: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "tenant_id", "role"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("token expired") from None
    except jwt.PyJWTError:
        raise Unauthenticated() from None
    try:
        role = Role(claims["role"])
    except ValueError:
        raise Unauthenticated() from None
    tenant_id = claims["tenant_id"]
    if role not in TENANT_ROLES or not isinstance(tenant_id, str) or not tenant_id:
        raise Unauthenticated()
    return Principal(role, tenant_id, str(claims["sub"]), "jwt")


# --------------------------------------------------------------------------------------------------
# Resolution


class Authenticator:
    def __init__(self, db: AsyncDatabase, *, admin_token: str, jwt_secret: str,
                 revocations: Revocations | None = None) -> None:
        self.db = db
        self.admin_token = admin_token
        self.jwt_secret = jwt_secret
        self.revocations = revocations

    @classmethod
    def from_settings(cls, db: AsyncDatabase, settings: AuthSettings, revocations: Revocations | None = None) -> Authenticator:
        return cls(db, admin_token=settings.admin_token, jwt_secret=settings.jwt_secret, revocations=revocations)

    def revoked(self, principal: Principal) -> bool:
        """Whether ``principal`` comes from a revoked API key (by key id; no database read)."""
        return principal.via != "admin_token" and self.revocations is not None and self.revocations.is_revoked(principal.subject)

    async def authenticate(self, token: str) -> Principal:
        """Resolve a bearer token or raise ``Unauthenticated`` (HTTP 401)."""
        if not token:
            raise Unauthenticated()
        if hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return Principal(Role.PLATFORM_ADMIN, None, "platform-admin", "admin_token")
        if token.startswith(KEY_PREFIX):
            key = await key_by_hash(self.db, hash_key(token))
            if key is None:
                raise Unauthenticated()
            return Principal(Role(key["role"]), key["tenant_id"], key["_id"], "api_key")
        if token.count(".") == 2:
            principal = decode_jwt(token, secret=self.jwt_secret)
            if self.revoked(principal):
                raise Unauthenticated("token revoked")
            return principal
        raise Unauthenticated()


async def authenticate(token: str, db: AsyncDatabase, *, admin_token: str, jwt_secret: str) -> Principal:
    """One-shot form of ``Authenticator.authenticate``."""
    return await Authenticator(db, admin_token=admin_token, jwt_secret=jwt_secret).authenticate(token)


bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API key (my_live_...), a JWT from POST /v1/auth/token, or the platform administrator token.",
)


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]
) -> Principal:
    """FastAPI dependency: the caller, from ``Authorization: Bearer``; 401 without valid credentials.

    Needs ``request.app.state.authenticator`` (an ``Authenticator``).
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated()
    authenticator: Authenticator = request.app.state.authenticator
    principal = await authenticator.authenticate(credentials.credentials.strip())
    request.state.principal = principal
    return principal
