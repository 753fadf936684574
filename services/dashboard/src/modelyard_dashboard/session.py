"""The signed-in user, kept in the browser as an encrypted, expiring cookie.

The cookie holds the token the user signed in with (the platform admin token, a tenant API key or a
JWT) and what the tenant API said it is, encrypted and authenticated with Fernet (AES-128-CBC with an
HMAC-SHA256, and a timestamp checked against the session's lifetime). Nothing is kept server-side, so
any replica that has the key can serve any request; the browser cannot read the cookie (HttpOnly) nor
send it from another site (SameSite=Strict), and the token never appears in a URL.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

log = logging.getLogger(__name__)

COOKIE = "modelyard_session"


@dataclass(frozen=True)
class Session:
    token: str
    role: str
    tenant_id: str | None
    via: str

    @property
    def is_platform_admin(self) -> bool:
        return self.role == "platform_admin"

    def can_see(self, tenant_id: str) -> bool:
        return self.is_platform_admin or self.tenant_id == tenant_id


def session_keys(setting: SecretStr | None) -> list[str]:
    """The configured Fernet keys, or one random key with a loud warning when none is configured."""
    if setting is not None and setting.get_secret_value().strip():
        return [k.strip() for k in setting.get_secret_value().split(",") if k.strip()]
    log.warning(
        "MODELYARD_DASHBOARD_SESSION_KEY is not set: using a random key for this process only. Sessions end when it "
        "restarts and are not shared between replicas; set it (python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())') in production"
    )
    return [Fernet.generate_key().decode()]


class SessionSealer:
    """Seals a ``Session`` into a cookie value and opens it again (None when forged, stale or garbled)."""

    def __init__(self, keys: list[str], ttl_s: int) -> None:
        if not keys:
            raise ValueError("at least one session key is needed")
        self.fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        self.ttl_s = ttl_s

    def seal(self, session: Session, now: float | None = None) -> str:
        data = json.dumps(asdict(session), separators=(",", ":")).encode()
        return self.fernet.encrypt_at_time(data, int(now if now is not None else time.time())).decode()

    def open(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self.fernet.decrypt_at_time(cookie.encode(), self.ttl_s, int(now if now is not None else time.time()))
            fields = json.loads(data)
            return Session(token=fields["token"], role=fields["role"], tenant_id=fields["tenant_id"], via=fields["via"])
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
