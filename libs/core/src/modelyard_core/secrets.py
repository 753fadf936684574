"""Secrets at rest: values modelyard must read back (webhook signing secrets, tenants' model API keys),
encrypted with a master key from configuration.

``MODELYARD_MASTER_KEYS`` holds one or more Fernet keys (AES-128-CBC with HMAC-SHA256, from the
``cryptography`` package), comma-separated: the **first encrypts**, **every one decrypts**. Rotation:
put a new key first and keep the old one after it (everything still decrypts), run
``modelyard secrets rotate`` (re-encrypts every stored secret with the new key), then drop the old key.

Unset, a fixed development key is used with a warning, so a local stack works out of the box (the
tenant API encrypts what the dispatcher and the inference workers decrypt: the key must be the same
in every service, which a random per-process key would not be).
"""

from __future__ import annotations

import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

log = logging.getLogger(__name__)

#: The development key: derived from a public string, so it protects nothing. Set MODELYARD_MASTER_KEYS.
DEV_MASTER_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"modelyard development master key").digest()).decode()


class SecretUnreadable(ValueError):
    """A stored secret that no configured master key decrypts (a key was dropped too early, or tampering)."""


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one master key is needed")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except ValueError as exc:
            raise ValueError(f"MODELYARD_MASTER_KEYS: not a Fernet key ({exc}); make one with "
                             "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'") from None
        self.development = keys == [DEV_MASTER_KEY]

    @classmethod
    def from_setting(cls, setting: SecretStr | None) -> SecretBox:
        keys = [k.strip() for k in (setting.get_secret_value() if setting is not None else "").split(",") if k.strip()]
        if not keys:
            log.warning("MODELYARD_MASTER_KEYS is not set: secrets at rest are encrypted with the public development "
                        "key; set it in production")
            keys = [DEV_MASTER_KEY]
        return cls(keys)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("a stored secret cannot be decrypted with any configured master key") from None

    def reseal(self, sealed: str) -> str:
        """``sealed`` encrypted again with the first (newest) key."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable("a stored secret cannot be decrypted with any configured master key") from None
