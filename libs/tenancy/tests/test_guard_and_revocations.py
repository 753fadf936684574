"""Unit tests (no servers): the brute-force guard's windows, and revocation in the authenticator
(an in-memory revocation list stands in for the topic view here; the system tests use the real one)."""

from __future__ import annotations

import pytest
from modelyard_tenancy import Authenticator, FailureGuard, Principal, Role, Unauthenticated, issue_jwt

SECRET = "s" * 40


def test_a_key_is_locked_after_its_failures_until_its_window_ends():
    now = [1000.0]
    guard = FailureGuard(max_failures=3, window_s=60, timer=lambda: now[0])
    for _ in range(3):
        assert guard.retry_after("k") is None
        guard.failed("k")
    assert guard.retry_after("k") == 60 and guard.retry_after("other") is None
    now[0] += 45
    guard.failed("k")  # more failures do not extend the window
    assert guard.retry_after("k") == 15
    now[0] += 15.5
    assert guard.retry_after("k") is None


class Revoked:
    def __init__(self, *ids: str) -> None:
        self.ids = set(ids)

    def is_revoked(self, key_id: str) -> bool:
        return key_id in self.ids


async def test_a_jwt_of_a_revoked_key_is_refused_without_a_database():
    revoked = Revoked()
    auth = Authenticator(None, admin_token="admin-token-123", jwt_secret=SECRET, revocations=revoked)  # type: ignore[arg-type]
    token = issue_jwt(Principal(Role.MEMBER, "t1", "key-1", "api_key"), secret=SECRET, ttl_s=900)
    assert (await auth.authenticate(token)).subject == "key-1"
    revoked.ids.add("key-1")
    with pytest.raises(Unauthenticated, match="revoked"):
        await auth.authenticate(token)
    assert (await auth.authenticate("admin-token-123")).is_platform_admin  # the admin token is no key
