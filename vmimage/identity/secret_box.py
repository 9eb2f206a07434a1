"""Secrets kept at rest encrypted (access-key secrets): AES-256-GCM under a key that is not
in the database (a key file made 0600 on first start, or VMIMAGE_SECRET_KEY).

A sealed value is "aesgcm1:" + base64url(nonce | ciphertext | tag); the row's own id is the
associated data, so a sealed secret copied onto another row does not open.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vmimage.core.errors import BackendUnavailable

PREFIX = "aesgcm1:"
KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("the secret key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_passphrase(cls, text: str) -> "SecretBox":
        """VMIMAGE_SECRET_KEY: any string; the key is its SHA-256."""
        return cls(hashlib.sha256(text.encode()).digest())

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(PREFIX)

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        return PREFIX + _b64(nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode()))

    def open(self, sealed: str, context: str) -> str:
        if not self.is_sealed(sealed):
            raise BackendUnavailable("A stored secret is not sealed")
        raw = _unb64(sealed[len(PREFIX):])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise BackendUnavailable("A stored secret does not open with this service's secret key") from None


def new_key_text() -> str:
    return _b64(os.urandom(KEY_BYTES))


def key_from_text(text: str) -> bytes:
    return _unb64(text.strip())
