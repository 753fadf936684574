"""API keys and JWTs: pure functions, no server."""

from __future__ import annotations

import time

import jwt
import pytest
from modelyard_tenancy import KEY_PREFIX, Principal, Role, Unauthenticated, decode_jwt, hash_key, issue_jwt, new_api_key

SECRET = "unit-test-secret-0123456789abcdef0123456789"


def test_api_keys_are_random_prefixed_and_stored_only_as_hashes():
    a, b = new_api_key(), new_api_key()
    assert a.secret != b.secret and a.secret.startswith(KEY_PREFIX) and len(a.secret) >= 48
    assert a.visible_prefix == a.secret[: len(KEY_PREFIX) + 8]
    assert a.key_hash == hash_key(a.secret) and a.secret not in a.key_hash and len(a.key_hash) == 64


def test_jwt_round_trip_and_rejections():
    p = Principal(Role.MEMBER, "t1", "key-1", "api_key")
    back = decode_jwt(issue_jwt(p, secret=SECRET, ttl_s=60), secret=SECRET)
    assert (back.role, back.tenant_id, back.subject, back.via) == (Role.MEMBER, "t1", "key-1", "jwt")
    with pytest.raises(Unauthenticated):
        decode_jwt(issue_jwt(p, secret=SECRET, ttl_s=60), secret=SECRET + "x")
    with pytest.raises(Unauthenticated, match="expired"):
        decode_jwt(issue_jwt(p, secret=SECRET, ttl_s=10, now=time.time() - 3600), secret=SECRET)
    forged = jwt.encode({"iss": "modelyard-tenant", "sub": "x", "tenant_id": "t1", "role": "platform_admin", "iat": int(time.time()),
                         "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthenticated):
        decode_jwt(forged, secret=SECRET)  # a JWT never carries the platform role, even correctly signed
    no_exp = jwt.encode({"iss": "modelyard-tenant", "sub": "x", "tenant_id": "t1", "role": "member", "iat": int(time.time())}, SECRET)
    with pytest.raises(Unauthenticated):
        decode_jwt(no_exp, secret=SECRET)
    with pytest.raises(ValueError):
        issue_jwt(Principal(Role.PLATFORM_ADMIN, None, "admin", "admin_token"), secret=SECRET, ttl_s=60)
