"""The session cookie: sealed and opened with Fernet keys; forged, expired or foreign cookies open to nothing."""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet
from modelyard_dashboard.session import Session, SessionSealer, session_keys
from pydantic import SecretStr

ADMIN = Session(token="dev-admin-token", role="platform_admin", tenant_id=None, via="admin_token")
TENANT = Session(token="my_live_abcdefgh0123456789", role="member", tenant_id="t1", via="api_key")


def test_a_sealed_session_opens_to_itself_and_hides_the_token():
    sealer = SessionSealer([Fernet.generate_key().decode()], ttl_s=3600)
    for session in (ADMIN, TENANT):
        cookie = sealer.seal(session)
        assert session.token not in cookie and "platform_admin" not in cookie
        assert sealer.open(cookie) == session


def test_forged_foreign_garbled_and_missing_cookies_open_to_nothing():
    sealer = SessionSealer([Fernet.generate_key().decode()], ttl_s=3600)
    cookie = sealer.seal(TENANT)
    other = SessionSealer([Fernet.generate_key().decode()], ttl_s=3600)
    assert other.open(cookie) is None  # another deployment's key
    flipped = cookie[:-6] + ("A" if cookie[-6] != "A" else "B") + cookie[-5:]
    assert sealer.open(flipped) is None  # one character changed: the HMAC fails
    for junk in (None, "", "not-a-cookie", "gAAAAA"):
        assert sealer.open(junk) is None


def test_a_session_expires_after_its_lifetime():
    sealer = SessionSealer([Fernet.generate_key().decode()], ttl_s=600)
    cookie = sealer.seal(ADMIN, now=1_000_000)
    assert sealer.open(cookie, now=1_000_000 + 599) == ADMIN
    assert sealer.open(cookie, now=1_000_000 + 601) is None


def test_keys_rotate_the_first_seals_every_one_opens():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = SessionSealer([old], ttl_s=3600).seal(TENANT)
    rotated = SessionSealer(session_keys(SecretStr(f"{new}, {old}")), ttl_s=3600)
    assert rotated.open(before) == TENANT
    assert SessionSealer([new], ttl_s=3600).open(rotated.seal(TENANT)) == TENANT


def test_without_a_configured_key_a_random_one_is_used_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        keys = session_keys(None)
    assert len(keys) == 1 and Fernet(keys[0].encode())
    assert "MODELYARD_DASHBOARD_SESSION_KEY is not set" in caplog.text
    assert session_keys(None) != keys  # per process, not a fixed default anyone could know


def test_who_sees_what():
    assert ADMIN.can_see("t1") and ADMIN.can_see("t2") and ADMIN.is_platform_admin
    assert TENANT.can_see("t1") and not TENANT.can_see("t2") and not TENANT.is_platform_admin
