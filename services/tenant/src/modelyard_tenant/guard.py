"""Brute-force protection of token issuance: ``modelyard_tenancy.FailureGuard`` per presented key id
and per source address. A caller over either limit gets 429 with ``Retry-After`` before its key is
even looked at, so guessing costs the attacker the whole window."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard_tenancy import KEY_PREFIX, VISIBLE_CHARS, FailureGuard

from .errors import TooManyAttempts
from .settings import TenantServiceSettings


def key_id_of(token: str) -> str:
    """What names the key an attempt is aimed at without revealing it: its visible prefix (stored as
    the key's ``prefix``), or ``other`` for anything that is not an API key."""
    return token[: len(KEY_PREFIX) + VISIBLE_CHARS] if token.startswith(KEY_PREFIX) else "other"


@dataclass
class Attempt:
    guard: TokenGuard
    key: str
    address: str

    def failed(self) -> None:
        self.guard.per_key.failed(self.key)
        self.guard.per_address.failed(self.address)


class TokenGuard:
    def __init__(self, settings: TenantServiceSettings) -> None:
        window = settings.token_failure_window_s
        self.per_key = FailureGuard(max_failures=settings.token_max_failures_per_key, window_s=window)
        self.per_address = FailureGuard(max_failures=settings.token_max_failures_per_address, window_s=window)

    def attempt(self, token: str, address: str | None) -> Attempt:
        """An attempt with ``token`` from ``address``; 429 (``TooManyAttempts``) if either is locked."""
        key, addr = key_id_of(token), address or "unknown"
        by_key, by_address = self.per_key.retry_after(key), self.per_address.retry_after(addr)
        if by_key is not None or by_address is not None:
            which = "this key" if by_key is not None else "this address"
            raise TooManyAttempts(f"too many failed attempts for {which}; retry later",
                                  max(by_key or 0, by_address or 0))
        return Attempt(self, key, addr)
