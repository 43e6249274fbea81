"""An address that keeps presenting bad API tokens is answered 429 before any token lookup,
on /api/ (Django) and /mcp (the ASGI app beside it)."""

from __future__ import annotations

import pytest
from django.test import Client

from core.accounts import throttle
from core.accounts.models import ApiToken
from core.accounts.roles import MCP_READ
from tests.security.asgi import mcp

pytestmark = pytest.mark.django_db

ATTACKER = "203.0.113.66"
NEIGHBOUR = "203.0.113.67"
BAD = "Bearer axh_" + "x" * 43
LIMIT = 3


@pytest.fixture(autouse=True)
def _small_limit(settings, monkeypatch):
    settings.API_AUTH_FAILURE_LIMIT = LIMIT
    settings.API_AUTH_FAILURE_WINDOW_SECONDS = 300
    now = [999_999_900.0]  # the start of a window (a multiple of 300 s)
    monkeypatch.setattr(throttle, "clock", lambda: now[0])
    return now


def api(address: str, authorization: str | None = None, path: str = "/api/tools"):
    headers = {"Authorization": authorization} if authorization else {}
    return Client(REMOTE_ADDR=address).get(path, headers=headers)


def test_after_the_limit_an_address_gets_429_before_any_token_lookup(reader, django_assert_num_queries):
    for _ in range(LIMIT):
        assert api(ATTACKER, BAD).status_code == 401
    with django_assert_num_queries(0):
        refused = api(ATTACKER, BAD)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "300"
    error = refused.json()["error"]
    assert error["code"] == "RATE_LIMITED" and error["retry_after"] == 300
    assert refused["Content-Type"] == "application/json"
    # A good token from that address waits too: the address is refused before its token is read.
    _, raw = ApiToken.issue(reader, MCP_READ)
    assert api(ATTACKER, f"Bearer {raw}").status_code == 429
    assert Client(REMOTE_ADDR=ATTACKER).post("/api/tools/ax_get_customer", data="{}", content_type="application/json",
                                             headers={"Authorization": BAD}).status_code == 429


def test_another_address_is_not_refused(reader):
    for _ in range(LIMIT):
        api(ATTACKER, BAD)
    assert api(ATTACKER, BAD).status_code == 429
    _, raw = ApiToken.issue(reader, MCP_READ)
    assert api(NEIGHBOUR, f"Bearer {raw}").status_code == 200
    assert api(NEIGHBOUR, BAD).status_code == 401


def test_an_ipv6_address_counts_for_its_whole_64(db):
    for n in range(LIMIT):
        api(f"2001:db8:1:2::{n + 1}", BAD)
    assert api("2001:db8:1:2:ffff::9", BAD).status_code == 429
    assert api("2001:db8:1:3::1", BAD).status_code == 401


def test_requests_without_credentials_do_not_count(db):
    for _ in range(LIMIT * 3):
        assert api(ATTACKER).status_code == 401
    assert api(ATTACKER, BAD).status_code == 401


def test_retry_after_counts_down_and_the_next_window_lets_the_address_in(reader, _small_limit):
    for _ in range(LIMIT):
        api(ATTACKER, BAD)
    _small_limit[0] += 120
    assert api(ATTACKER, BAD)["Retry-After"] == "180"
    _small_limit[0] += 180
    _, raw = ApiToken.issue(reader, MCP_READ)
    assert api(ATTACKER, f"Bearer {raw}").status_code == 200


def test_a_limit_of_zero_switches_it_off(settings, db):
    settings.API_AUTH_FAILURE_LIMIT = 0
    for _ in range(LIMIT * 2):
        assert api(ATTACKER, BAD).status_code == 401


def test_api_answers_carry_nosniff(reader):
    assert api(ATTACKER, BAD)["X-Content-Type-Options"] == "nosniff"
    for _ in range(LIMIT):
        api(ATTACKER, BAD)
    assert api(ATTACKER, BAD)["X-Content-Type-Options"] == "nosniff"


# --- /mcp ------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_mcp_refuses_an_address_over_the_limit_with_429(reader):
    for _ in range(LIMIT):
        failed = mcp(ATTACKER, BAD)
        assert failed.status_code == 401
        assert failed.headers["x-content-type-options"] == "nosniff"
    refused = mcp(ATTACKER, BAD)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "300"
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    _, raw = ApiToken.issue(reader, MCP_READ)
    assert mcp(ATTACKER, f"Bearer {raw}").status_code == 429
    # Not refused elsewhere: the neighbour's good token gets past the guard (to the MCP app,
    # which without a server lifespan here answers that it is starting).
    assert mcp(NEIGHBOUR, f"Bearer {raw}").status_code == 503


@pytest.mark.django_db(transaction=True)
def test_mcp_and_api_share_the_count(db):
    for _ in range(LIMIT - 1):
        api(ATTACKER, BAD)
    assert mcp(ATTACKER, BAD).status_code == 401
    assert api(ATTACKER, BAD).status_code == 429
    assert mcp(ATTACKER, BAD).status_code == 429
