"""Signing secrets: generation, encryption at rest, signatures.

Secrets are stored Fernet-encrypted under a keyring: the keys of WEBHOOK_ENCRYPTION_KEYS in
order, then the key derived from SECRET_KEY (and from each of SECRET_KEY_FALLBACKS). The
first key encrypts, every key decrypts. With WEBHOOK_ENCRYPTION_KEYS unset the SECRET_KEY key
is the first, as it was before the setting existed; once it is set, that key only decrypts
what was stored before, until `manage.py rotate_webhook_encryption` moves it to the new key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "whsec_"
SAMPLE = 5  # the start-up check reads this many of the oldest and of the newest subscriptions


def derived_key(secret_key: str) -> bytes:
    """The Fernet key derived from a SECRET_KEY: the only key before WEBHOOK_ENCRYPTION_KEYS existed."""
    digest = hashlib.sha256(b"axhub webhook secrets\x00" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@dataclass(frozen=True)
class Keyring:
    fernets: tuple[Fernet, ...]
    labels: tuple[str, ...]  # where each key comes from, for messages; never the key itself
    configured: int  # how many come from WEBHOOK_ENCRYPTION_KEYS
    multi: MultiFernet  # encrypts with the first key, decrypts with any

    def index(self, token: str) -> int | None:
        """The position of the key that decrypts `token`, or None when none does."""
        for i, fernet in enumerate(self.fernets):
            try:
                fernet.decrypt(token.encode())
            except InvalidToken:
                continue
            return i
        return None

    def is_fallback(self, index: int) -> bool:
        """Whether that key is one derived from SECRET_KEY while WEBHOOK_ENCRYPTION_KEYS is set."""
        return self.configured > 0 and index >= self.configured


@lru_cache(maxsize=8)
def _keyring(keys: tuple[str, ...], secret_key: str, fallbacks: tuple[str, ...]) -> Keyring:
    fernets, labels = [], []
    for position, key in enumerate(keys, 1):
        try:
            fernets.append(Fernet(key))
        except ValueError:
            raise ImproperlyConfigured(f"WEBHOOK_ENCRYPTION_KEYS: key {position} of {len(keys)} is not a valid "
                                       "Fernet key (32 url-safe base64-encoded bytes)") from None
        labels.append(f"WEBHOOK_ENCRYPTION_KEYS key {position}")
    for label, secret in [("SECRET_KEY", secret_key),
                          *((f"SECRET_KEY_FALLBACKS entry {n}", k) for n, k in enumerate(fallbacks, 1))]:
        fernets.append(Fernet(derived_key(secret)))
        labels.append(f"the key derived from {label}")
    return Keyring(tuple(fernets), tuple(labels), len(keys), MultiFernet(fernets))


def keyring() -> Keyring:
    """The keyring the current settings describe (cached per settings value)."""
    return _keyring(tuple(settings.WEBHOOK_ENCRYPTION_KEYS), settings.SECRET_KEY,
                    tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def encrypt(secret: str) -> str:
    return keyring().multi.encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    """The secret; InvalidToken when no key of the keyring decrypts it."""
    return keyring().multi.decrypt(token.encode()).decode()


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


@dataclass(frozen=True)
class SampleReport:
    """What the start-up check found in its sample of stored secrets."""

    sampled: int
    undecryptable: list[str]  # subscription ids whose secret no key decrypts
    on_fallback: list[str]  # ids still decrypting only with a SECRET_KEY-derived fallback key


def sample_stored_secrets(size: int = SAMPLE, using: str = "default") -> SampleReport:
    """Try the keyring on the current secret of the `size` oldest and `size` newest subscriptions:
    a key dropped too early shows in the oldest, a wrong first key in the newest. Bounded cost
    whatever the table's size; an empty or not yet migrated table yields an empty report."""
    from django.db import connections

    from core.webhooks.models import Subscription

    if Subscription._meta.db_table not in connections[using].introspection.table_names():
        return SampleReport(0, [], [])
    ring = keyring()
    rows = Subscription.objects.using(using).values_list("pk", "subscription_id", "secret_encrypted")
    sample = {pk: (sid, token) for pk, sid, token in [*rows.order_by("pk")[:size], *rows.order_by("-pk")[:size]]}
    undecryptable, on_fallback = [], []
    for sid, token in sample.values():
        index = ring.index(token)
        if index is None:
            undecryptable.append(sid)
        elif ring.is_fallback(index):
            on_fallback.append(sid)
    return SampleReport(len(sample), undecryptable, on_fallback)


def undecryptable_message(report: SampleReport) -> str:
    ids = ", ".join(report.undecryptable)
    if settings.WEBHOOK_ENCRYPTION_KEYS:
        keys = "no key in WEBHOOK_ENCRYPTION_KEYS (nor the SECRET_KEY fallback)"
        fix = "Restore the old key: add it back to WEBHOOK_ENCRYPTION_KEYS after the first key"
    else:
        keys = "the key derived from SECRET_KEY (WEBHOOK_ENCRYPTION_KEYS is unset)"
        fix = ("Did SECRET_KEY change? Restore the old key: set SECRET_KEY back, or add the old SECRET_KEY's "
               "derived key to WEBHOOK_ENCRYPTION_KEYS (README \"Webhook secret keys\")")
    return (f"{keys} decrypts {len(report.undecryptable)} of {report.sampled} sampled stored webhook secrets "
            f"(subscriptions {ids}): webhooks cannot be signed. {fix}, then run "
            "`manage.py rotate_webhook_encryption`; `manage.py rotate_webhook_encryption --dry-run` counts every "
            "secret that no key decrypts.")


def check_stored_secrets(size: int = SAMPLE) -> None:
    """Raise ImproperlyConfigured when a sampled stored secret cannot be decrypted by any key.

    Called as a process starts (the dispatcher; the web process and the worker too), so a lost
    key stops the process loudly instead of failing every delivery one by one."""
    report = sample_stored_secrets(size)
    if report.undecryptable:
        raise ImproperlyConfigured(undecryptable_message(report))
