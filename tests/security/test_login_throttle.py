"""Log-in throttling (django-axes): per username and address, the same answer for everyone."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt, AccessLog
from django.test import Client

pytestmark = pytest.mark.django_db

HOME = "198.51.100.10"
ELSEWHERE = "198.51.100.99"


def log_in(client: Client, username: str, password: str, address: str = HOME):
    return client.post("/accounts/login/", {"username": username, "password": password, "next": "/"},
                       REMOTE_ADDR=address)


def fail(client: Client, username: str, times: int, address: str = HOME) -> list[int]:
    return [log_in(client, username, "wrong-password", address).status_code for _ in range(times)]


def alert(response) -> str:
    return re.search(r'<p class="alert error" role="alert">(.*?)</p>', response.content.decode()).group(1)


def test_five_wrong_passwords_lock_the_username_out_from_that_address_even_with_the_right_one(client, reader):
    assert fail(client, "reader", 4) == [200] * 4
    locking = log_in(client, "reader", "wrong-password")
    assert locking.status_code == 429
    refused = log_in(client, "reader", "reader-pass-1")
    assert refused.status_code == 429
    assert alert(refused) == "Too many failed log-ins with this username from your address. Try again in 15 minutes."
    assert refused["Retry-After"] == "900"
    assert b'name="password"' in refused.content  # the page still has the form
    assert "_auth_user_id" not in client.session
    assert client.get("/overview/").status_code == 302


def test_another_address_is_not_locked_out(client, reader):
    fail(client, "reader", 5)
    assert log_in(client, "reader", "reader-pass-1").status_code == 429
    other = Client()
    assert log_in(other, "reader", "reader-pass-1", ELSEWHERE)["Location"] == "/"
    assert other.get("/overview/").status_code == 200


def test_another_username_from_the_same_address_is_not_locked_out(client, reader, writer):
    fail(client, "writer", 5)
    assert log_in(client, "reader", "reader-pass-1")["Location"] == "/"


def test_an_unknown_username_gets_the_same_answers_as_a_real_one(client, reader):
    answers = {}
    for username in ("reader", "nobody-by-that-name"):
        wrong = log_in(client, username, "wrong-password")
        fail(client, username, 3)
        locking = log_in(client, username, "wrong-password")
        locked = log_in(client, username, "reader-pass-1")
        answers[username] = [(r.status_code, alert(r), r.get("Retry-After")) for r in (wrong, locking, locked)]
    assert answers["reader"] == answers["nobody-by-that-name"]
    assert answers["reader"][2][0] == 429


def test_a_successful_log_in_resets_the_count(client, reader):
    fail(client, "reader", 4)
    assert log_in(client, "reader", "reader-pass-1")["Location"] == "/"
    client.post("/accounts/logout/")
    assert not AccessAttempt.objects.filter(username="reader").exists()
    fail(client, "reader", 4)  # four more are allowed again: the fifth would lock
    assert log_in(client, "reader", "reader-pass-1")["Location"] == "/"


def test_the_lockout_ends_after_the_cool_off(client, reader, settings):
    fail(client, "reader", 5)
    assert log_in(client, "reader", "reader-pass-1").status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME)
    assert log_in(client, "reader", "reader-pass-1")["Location"] == "/"


def test_an_x_forwarded_for_header_does_not_change_the_address(client, reader):
    """Only the web server may turn X-Forwarded-For into the address (FORWARDED_ALLOW_IPS)."""
    for n in range(5):
        client.post("/accounts/login/", {"username": "reader", "password": "wrong"}, REMOTE_ADDR=HOME,
                    HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    spoofed = client.post("/accounts/login/", {"username": "reader", "password": "reader-pass-1"}, REMOTE_ADDR=HOME,
                          HTTP_X_FORWARDED_FOR="203.0.113.77")
    assert spoofed.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {HOME}


def test_the_admin_log_in_is_throttled_too(client, staff_admin):
    for _ in range(5):
        client.post("/admin/login/", {"username": "admin", "password": "wrong"}, REMOTE_ADDR=HOME)
    refused = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pass-1"},
                          REMOTE_ADDR=HOME)
    assert refused.status_code == 429


def test_attempts_and_log_ins_are_listed_in_the_admin(client, reader, staff_admin):
    fail(client, "someone", 2)
    log_in(Client(), "reader", "reader-pass-1")
    admin = Client()
    admin.force_login(staff_admin)
    attempts = admin.get("/admin/axes/accessattempt/")
    assert attempts.status_code == 200 and HOME.encode() in attempts.content and b"someone" in attempts.content
    assert admin.get("/admin/axes/accesslog/").status_code == 200
    assert AccessLog.objects.filter(username="reader", ip_address=HOME).exists()


def test_force_login_in_tests_still_works(reader):
    client = Client()
    client.force_login(reader)
    assert client.get("/overview/").status_code == 200
