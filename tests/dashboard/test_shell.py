"""Login, logout, the role-aware navigation, the home page and the error pages."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.test import Client

from core.accounts.roles import MCP_READ
from dashboard import nav
from dashboard.nav import Area
from tests.helpers import HTMX, logged_in

pytestmark = pytest.mark.django_db

ALL_PAGES = ["/overview/", "/audit/", "/batches/", "/tools/", "/batches/new/"]


def nav_labels(response) -> list[str]:
    return [link.area.label for link in response.context["nav_links"]]


def test_every_page_sends_an_anonymous_visitor_to_the_login(client):
    for url in [*ALL_PAGES, "/"]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_an_expired_session_on_an_htmx_request_reloads_the_login_page_whole(client):
    response = client.get("/audit/?tool=ax_get_customer", headers={**HTMX, "HX-Current-URL": "http://testserver/audit/?x=1"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/audit/%3Fx%3D1"


def test_login_with_the_form_lands_on_the_first_page_of_the_role(client, reader, stakeholder):
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'name="password"' in page.content
    assert b'name="next" value="/"' in page.content
    response = client.post("/accounts/login/", {"username": "reader", "password": "reader-pass-1", "next": "/"},
                           follow=True)
    assert response.redirect_chain == [("/", 302), ("/overview/", 302)]
    client.post("/accounts/logout/")
    landed = client.post("/accounts/login/", {"username": "stakeholder", "password": "stake-pass-1", "next": "/"},
                         follow=True)
    assert landed.redirect_chain == [("/", 302), ("/roi/", 302)]
    assert landed.status_code == 200 and b"Return on investment" in landed.content


def test_login_returns_to_the_page_asked_for(client, reader):
    page = client.get("/accounts/login/?next=/audit/")
    assert b'name="next" value="/audit/"' in page.content
    response = client.post("/accounts/login/", {"username": "reader", "password": "reader-pass-1", "next": "/audit/"})
    assert response["Location"] == "/audit/"


def test_a_wrong_password_shows_an_error(client, reader):
    response = client.post("/accounts/login/", {"username": "reader", "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_logout_is_a_post_and_ends_the_session(as_reader):
    assert as_reader.get("/accounts/logout/").status_code == 405
    assert as_reader.post("/accounts/logout/").status_code == 302
    assert as_reader.get("/overview/").status_code == 302


RECORDS = ["Customers", "Items", "Sales orders"]


@pytest.mark.parametrize("who, expected", [
    ("as_admin", ["Overview", *RECORDS, "Audit log", "Batches", "Imports", "Webhooks", "ROI", "Tools", "Admin"]),
    ("as_writer", ["Overview", *RECORDS, "Audit log", "Batches", "Imports", "Tools"]),
    ("as_reader", ["Overview", *RECORDS, "Audit log", "Batches", "Imports", "Tools"]),
])
def test_the_nav_shows_what_the_role_may_use(request, who, expected):
    response = request.getfixturevalue(who).get("/overview/")
    assert response.status_code == 200
    assert nav_labels(response) == expected
    assert b'aria-current="page"' in response.content


def test_a_stakeholder_sees_no_operations_page(as_stakeholder):
    for url in ALL_PAGES:
        assert as_stakeholder.get(url).status_code == 403, url
    home = as_stakeholder.get("/")
    assert home.status_code == 302 and home["Location"] == "/roi/"
    roi = as_stakeholder.get("/roi/")
    assert nav_labels(roi) == ["ROI"]
    assert b"Stakeholder" in roi.content


def test_a_user_without_a_role_is_told_to_ask_for_one(as_outsider):
    response = as_outsider.get("/")
    assert response.status_code == 200
    assert b"no role yet" in response.content
    assert as_outsider.get("/overview/").status_code == 403


def test_an_admin_without_staff_status_gets_no_admin_link(admin):
    assert "Admin" not in nav_labels(logged_in(admin).get("/overview/"))


def test_a_registered_area_appears_in_nav_and_overview_for_its_role(monkeypatch, as_reader, as_stakeholder):
    extra = Area("dashboard:tools", "Webhooks", MCP_READ, "Subscriptions and deliveries.", prefix="/webhooks/")
    monkeypatch.setattr(nav, "AREAS", [*nav.AREAS[:-1], extra, nav.AREAS[-1]])
    response = as_reader.get("/overview/")
    assert "Webhooks" in nav_labels(response)
    assert b"Subscriptions and deliveries." in response.content
    assert as_stakeholder.get("/")["Location"] == "/roi/"


def test_an_area_whose_url_is_not_wired_stays_hidden(monkeypatch, as_reader):
    monkeypatch.setattr(nav, "AREAS", [*nav.AREAS, Area("dashboard:reports", "Reports", MCP_READ)])
    assert "Reports" not in nav_labels(as_reader.get("/overview/"))


def test_home_sends_each_role_to_its_first_area(as_reader):
    response = as_reader.get("/")
    assert response.status_code == 302 and response["Location"] == "/overview/"
    assert as_reader.post("/").status_code == 405


def test_the_403_page_explains_and_keeps_the_layout(as_stakeholder):
    response = as_stakeholder.get("/audit/")
    assert response.status_code == 403
    assert b"needs the role MCP_Read" in response.content
    assert b"Log out" in response.content


def test_an_unknown_page_is_a_404_not_an_error(client):
    assert Client().get("/no-such-page/").status_code == 404


@contextmanager
def console() -> Iterator[io.StringIO]:
    """What the configured console handlers (the root's, and any of Django's) print meanwhile."""
    out = io.StringIO()
    loggers = [logging.getLogger(name) for name in ("", "django", "django.request")]
    handlers = [h for logger in loggers for h in logger.handlers if type(h) is logging.StreamHandler]
    assert handlers, "no console handler configured"
    streams = [h.setStream(out) for h in handlers]
    try:
        yield out
    finally:
        for handler, stream in zip(handlers, streams, strict=True):
            handler.setStream(stream)


def test_a_403_and_a_404_are_logged_once_as_one_line_each(as_stakeholder, caplog, settings):
    settings.DEBUG = True  # Django's own console handler speaks with DEBUG only: it must stay silent
    with console() as out, caplog.at_level(logging.INFO, logger="django.request"):
        assert as_stakeholder.get("/audit/").status_code == 403
        assert Client().get("/no-such-page/").status_code == 404
    records = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records if r.name == "django.request"]
    assert records == [("WARNING", "Forbidden (Permission denied): /audit/", None),
                       ("WARNING", "Not Found: /no-such-page/", None)]
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "WARNING django.request Forbidden (Permission denied): /audit/",
        "WARNING django.request Not Found: /no-such-page/"]


def test_a_server_error_keeps_its_traceback(caplog):
    with console() as out:
        logging.getLogger("django.request").error("Internal Server Error: /x/", exc_info=ValueError("broken"),
                                                  extra={"status_code": 500})
    assert "ValueError: broken" in out.getvalue()
    assert caplog.records[-1].exc_info is not None


@pytest.mark.parametrize("who, chip", [("as_admin", "Admin"), ("as_writer", "Writer"), ("as_reader", "Reader"),
                                       ("as_stakeholder", "Stakeholder")])
def test_the_role_chip_names_the_role_as_people_say_it(request, who, chip):
    page = request.getfixturevalue(who).get("/")
    if page.status_code == 302:
        page = request.getfixturevalue(who).get(page["Location"])
    technical = page.context["user_role"]
    assert f'<span class="role" title="{technical}">{chip}</span>' in page.content.decode()
