"""Signing secrets: generation, encryption at rest (Fernet, key derived from SECRET_KEY), signatures."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet
from django.conf import settings

PREFIX = "whsec_"


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"axhub webhook secrets\x00" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()


def generate_secret() -> str:
    """`whsec_` + base64 of 32 random bytes, the Standard Webhooks format."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> str | None:
    """Why a caller-given secret is unusable, or None."""
    if secret.startswith(PREFIX):
        try:
            raw = base64.b64decode(secret[len(PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            return "a secret starting with whsec_ must continue with standard base64"
        if not 24 <= len(raw) <= 64:
            return "a whsec_ secret must encode 24 to 64 bytes"
        return None
    if len(secret) < 16:
        return "a secret must be at least 16 characters long"
    return None


def key_bytes(secret: str) -> bytes:
    """The HMAC key: the base64-decoded rest of a whsec_ secret, else the secret's UTF-8 bytes."""
    if secret.startswith(PREFIX):
        return base64.b64decode(secret[len(PREFIX):])
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`."""
    mac = hmac.new(key_bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()
