"""WEBHOOK_ENCRYPTION_KEYS: secrets at rest that survive a SECRET_KEY change, the rotation
command, and the start-up check that stops a process whose keys cannot read the stored secrets."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection
from standardwebhooks import WebhookVerificationError

from core.webhooks import clock, crypto, services
from core.webhooks.checks import stored_secrets_check
from core.webhooks.models import Subscription
from tests.webhooks.helpers import order, subscribe, verify

ROOT = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:9/hook"
NEW = Fernet.generate_key().decode()
OLD = Fernet.generate_key().decode()


def legacy_fernet(secret_key: str) -> Fernet:
    """The key every install used before WEBHOOK_ENCRYPTION_KEYS, written out independently."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"axhub webhook secrets\x00" + secret_key.encode()).digest()))


@pytest.fixture(autouse=True)
def _fresh_keyring(settings):
    settings.WEBHOOK_ENCRYPTION_KEYS = []
    crypto._keyring.cache_clear()
    yield
    crypto._keyring.cache_clear()


def _secrets() -> dict[str, tuple[str, str]]:
    return {s.subscription_id: (s.secret_encrypted, s.previous_secret_encrypted) for s in Subscription.objects.all()}


def _rotate(*args: str, out: io.StringIO | None = None) -> str:
    out = out or io.StringIO()
    call_command("rotate_webhook_encryption", *args, stdout=out)
    return out.getvalue()


# (a) unset: the old behaviour


def test_unset_a_secret_encrypted_before_the_setting_still_decrypts(settings):
    token = legacy_fernet(settings.SECRET_KEY).encrypt(b"whsec_from-before").decode()
    assert crypto.decrypt(token) == "whsec_from-before"
    # New secrets are still encrypted the old way, so a downgrade reads them too.
    assert legacy_fernet(settings.SECRET_KEY).decrypt(crypto.encrypt("fresh-secret-value").encode()) == \
        b"fresh-secret-value"


# (b) [new, old]: old decrypts, new encrypts


def test_with_new_and_old_keys_the_old_decrypts_and_the_new_encrypts(settings):
    from_old = Fernet(OLD.encode()).encrypt(b"encrypted-under-old").decode()
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW, OLD]
    assert crypto.decrypt(from_old) == "encrypted-under-old"
    token = crypto.encrypt("a-brand-new-secret")
    assert Fernet(NEW.encode()).decrypt(token.encode()) == b"a-brand-new-secret"
    with pytest.raises(InvalidToken):
        Fernet(OLD.encode()).decrypt(token.encode())
    with pytest.raises(InvalidToken):
        legacy_fernet(settings.SECRET_KEY).decrypt(token.encode())


def test_with_keys_set_secrets_from_before_decrypt_through_the_secret_key_fallback(settings):
    token = legacy_fernet(settings.SECRET_KEY).encrypt(b"stored-before-keys").decode()
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW]
    assert crypto.decrypt(token) == "stored-before-keys"


# (c) the rotation command


@pytest.mark.django_db(transaction=True)
def test_rotation_moves_every_secret_to_the_first_key_and_deliveries_verify(settings, erp, writer, receiver,
                                                                          running_dispatcher):
    _, legacy_secret = subscribe(receiver.url + "?legacy")  # before the setting: SECRET_KEY-derived
    settings.WEBHOOK_ENCRYPTION_KEYS = [OLD]
    _, keyed_secret = subscribe(receiver.url + "?keyed")
    rotating, old_rotating_secret = subscribe(receiver.url + "?rotating")
    rotating_secret, _ = services.rotate_secret(rotating)  # the previous secret is in its grace period
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW, OLD]

    out = _rotate()
    assert "re-encrypted 4 webhook secrets under WEBHOOK_ENCRYPTION_KEYS key 1 (0 already were)" in out

    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW]
    settings.SECRET_KEY = "a-completely-different-secret-key-" + "x" * 20  # no longer matters
    new = Fernet(NEW.encode())
    for sub in Subscription.objects.all():
        assert new.decrypt(sub.secret_encrypted.encode())
        assert not sub.previous_secret_encrypted or new.decrypt(sub.previous_secret_encrypted.encode())
    crypto.check_stored_secrets()

    order(writer)
    got = {r.path.rsplit("?", 1)[1]: r for r in receiver.wait_for(3)}
    assert verify(legacy_secret, got["legacy"])["event"] == "salesorder.created"
    assert verify(keyed_secret, got["keyed"])["event"] == "salesorder.created"
    assert verify(rotating_secret, got["rotating"])["event"] == "salesorder.created"
    assert verify(old_rotating_secret, got["rotating"])  # the previous secret still signs during its grace
    with pytest.raises(WebhookVerificationError):
        verify(keyed_secret, got["legacy"])


@pytest.mark.django_db
def test_rotation_leaves_secrets_already_under_the_first_key_and_drops_expired_previous_ones(settings):
    settings.WEBHOOK_ENCRYPTION_KEYS = [OLD]
    sub, _ = subscribe(URL)
    services.rotate_secret(sub)
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW, OLD]
    current, _ = subscribe(URL)
    clock.advance(timedelta(days=2))  # past the 24 h grace: the previous secret is never used again

    out = _rotate()
    assert "re-encrypted 1 webhook secrets under WEBHOOK_ENCRYPTION_KEYS key 1 (1 already were; " \
           "1 expired previous secrets dropped)" in out
    sub.refresh_from_db()
    assert sub.previous_secret_encrypted == ""
    assert Fernet(NEW.encode()).decrypt(sub.secret_encrypted.encode())
    assert _rotate().startswith("re-encrypted 0 webhook secrets")  # idempotent


@pytest.mark.django_db
def test_rotation_refuses_and_changes_nothing_when_a_secret_cannot_be_decrypted(settings):
    settings.WEBHOOK_ENCRYPTION_KEYS = [OLD]
    subscribe(URL)
    lost, _ = subscribe(URL)
    # Encrypted under a key that is not configured any more.
    Subscription.objects.filter(pk=lost.pk).update(
        secret_encrypted=Fernet(Fernet.generate_key()).encrypt(b"lost-key-secret").decode())
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW, OLD]
    before = _secrets()
    with pytest.raises(CommandError, match=rf"1 stored webhook secrets cannot be decrypted by any key "
                                           rf"\({lost.subscription_id} \(current secret\)\); nothing was changed"):
        _rotate()
    assert _secrets() == before


# (d) the start-up check


@pytest.mark.django_db
def test_a_changed_secret_key_without_keys_stops_start_up_with_a_clear_message(settings):
    sub, _ = subscribe(URL)
    settings.SECRET_KEY = "the-operator-changed-the-secret-key-" + "y" * 20
    with pytest.raises(ImproperlyConfigured) as caught:
        crypto.check_stored_secrets()
    message = str(caught.value)
    assert "the key derived from SECRET_KEY (WEBHOOK_ENCRYPTION_KEYS is unset) decrypts 1 of 1 sampled stored " \
           "webhook secrets" in message
    assert sub.subscription_id in message and "Did SECRET_KEY change? Restore the old key" in message
    assert "rotate_webhook_encryption" in message
    # The dispatcher refuses to start, and the database system check fails (migrate, check --database).
    with pytest.raises(CommandError, match="Did SECRET_KEY change"):
        call_command("webhook_dispatcher")
    with pytest.raises(SystemCheckError, match="webhooks.E001"):
        call_command("check", databases=["default"])


@pytest.mark.django_db
def test_a_key_dropped_too_early_is_named_and_the_newest_and_oldest_are_sampled(settings):
    settings.WEBHOOK_ENCRYPTION_KEYS = [OLD]
    oldest, _ = subscribe(URL)
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW, OLD]
    for _ in range(12):
        subscribe(URL)
    crypto.check_stored_secrets()
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW]  # OLD removed before rotating
    with pytest.raises(ImproperlyConfigured, match=rf"no key in WEBHOOK_ENCRYPTION_KEYS \(nor the SECRET_KEY "
                                                   rf"fallback\) decrypts 1 of 10 sampled .*{oldest.subscription_id}"):
        crypto.check_stored_secrets()


@pytest.mark.django_db
def test_the_check_is_quiet_without_subscriptions_or_before_migrations(settings, monkeypatch):
    settings.SECRET_KEY = "z" * 50
    crypto.check_stored_secrets()  # no subscriptions
    subscribe(URL)
    settings.SECRET_KEY = "w" * 50
    monkeypatch.setattr(connection.introspection, "table_names", lambda *a, **k: [])  # a fresh database
    crypto.check_stored_secrets()
    assert stored_secrets_check(databases=["default"]) == []
    assert stored_secrets_check(databases=None) == []  # plain `check`: no database access


@pytest.mark.django_db
def test_secrets_left_on_the_secret_key_fallback_are_a_warning(settings):
    subscribe(URL)
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW]
    assert [m.id for m in stored_secrets_check(databases=["default"])] == ["webhooks.W001"]
    _rotate()
    assert stored_secrets_check(databases=["default"]) == []


# (e) a bad key


def test_a_bad_key_in_the_setting_is_improperly_configured_naming_its_position(settings):
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW, "not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="key 2 of 2 is not a valid Fernet key") as caught:
        crypto.encrypt("some-secret-value")
    assert "not-a-fernet-key" not in str(caught.value)


def test_a_bad_key_in_the_environment_stops_the_process_at_start(tmp_path):
    env = {**os.environ, "AX_VAR_DIR": str(tmp_path), "WEBHOOK_ENCRYPTION_KEYS": f"{NEW}, short-key-value"}
    run = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert "WEBHOOK_ENCRYPTION_KEYS: key 2 of 2 is not a valid Fernet key" in run.stderr
    assert "short-key-value" not in run.stderr + run.stdout


# (f) dry run


@pytest.mark.django_db
def test_dry_run_counts_and_changes_nothing(settings):
    subscribe(URL)
    settings.WEBHOOK_ENCRYPTION_KEYS = [OLD]
    subscribe(URL)
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW, OLD]
    subscribe(URL)
    before = _secrets()
    out = _rotate("--dry-run")
    assert "would re-encrypt 2 webhook secrets under WEBHOOK_ENCRYPTION_KEYS key 1 (1 already were)" in out
    assert "1 decrypted with the key derived from SECRET_KEY" in out
    assert "1 decrypted with WEBHOOK_ENCRYPTION_KEYS key 2" in out
    assert "0 cannot be decrypted by any key" in out
    assert _secrets() == before


@pytest.mark.django_db
def test_dry_run_reports_secrets_no_key_decrypts_and_fails(settings):
    subscribe(URL)
    settings.SECRET_KEY = "v" * 50
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW]
    subscribe(URL)
    before = _secrets()
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 stored webhook secrets cannot be decrypted"):
        _rotate("--dry-run", out=out)
    assert "1 cannot be decrypted by any key" in out.getvalue()
    assert _secrets() == before


@pytest.mark.django_db
def test_rotating_a_secret_no_key_can_read_does_not_carry_it_over(settings):
    """After a lost key the old secret cannot sign: the new one alone does, at once."""
    settings.WEBHOOK_ENCRYPTION_KEYS = [OLD]
    sub, _ = subscribe(URL)
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW]  # OLD is lost
    new_secret, until = services.rotate_secret(sub)
    sub.refresh_from_db()
    assert until is None and sub.previous_secret_encrypted == "" and sub.previous_secret_expires is None
    assert crypto.decrypt(sub.secret_encrypted) == new_secret
    crypto.check_stored_secrets()  # nothing unreadable is left behind


@pytest.mark.django_db(transaction=True)
def test_the_web_process_refuses_to_start_when_no_key_reads_the_stored_secrets(settings):
    """uvicorn's lifespan start-up fails with the check's message (the worker and the dispatcher
    stop the same way, as commands)."""
    import asyncio

    from core.asgi import application

    settings.WEBHOOK_ENCRYPTION_KEYS = [OLD]
    subscribe(URL)
    settings.WEBHOOK_ENCRYPTION_KEYS = [NEW]
    messages = [{"type": "lifespan.startup"}]

    async def receive():
        return messages.pop(0) if messages else await asyncio.sleep(3600)

    async def send(message):
        raise AssertionError(f"start-up went on: {message}")

    with pytest.raises(ImproperlyConfigured, match="WEBHOOK_ENCRYPTION_KEYS"):
        asyncio.run(application({"type": "lifespan"}, receive, send))
