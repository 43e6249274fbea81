"""Browser tests: the hub on pytest-django's live server, driven by headless Chromium.

Playwright's own browser downloads cannot run here; the tests use the system's Chromium
(/usr/bin/chromium, installed by .ci/run) and skip, saying so, where it is missing.
Screenshots of each page go to test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config, items) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """One Chromium per test module.

    While Playwright's sync API is started it keeps an event loop running in this thread, so
    Django refuses ORM calls from the tests as "async unsafe". The tests do no async work of
    their own, so that check is switched off, but only while the browser lives: the tests that
    run after this module (in the same process) keep it.
    """
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def watch_csp(page) -> list[str]:
    """What the Content-Security-Policy refused on this page, as Chromium logs it to the console."""
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    return violations


@pytest.fixture
def page(browser, live_server) -> Iterator:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    violations = watch_csp(page)
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert violations == [], f"Content-Security-Policy violations: {violations}"


def login(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture
def activity(erp, writer, reader) -> None:
    """A morning's worth of real tool calls, some refused, so the pages have something to show."""
    from core.errors import ToolError
    from core.tools.pipeline import call_tool

    def order(item_id: str, quantity: int) -> dict:
        return {"customer_account": "CUST-001", "lines": [{"item_id": item_id, "quantity": quantity}]}

    calls = [
        (writer, "ax_create_salesorder", order("ITEM-001", 2)),
        (writer, "ax_create_salesorder", order("ITEM-002", 9)),  # only 5 desks: INSUFFICIENT_STOCK
        (writer, "ax_get_customer", {"customer_account": "CUST-404"}),
        (reader, "ax_check_inventory", {"item_id": "ITEM-001"}),
        (reader, "ax_get_customer", {"customer_account": "CUST-002"}),
        (writer, "ax_adjust_inventory", {"item_id": "ITEM-003", "quantity_change": 25, "reason": "goods receipt"}),
    ]
    for user, tool, arguments in calls:
        try:
            call_tool(tool, arguments, user, via="http")
        except ToolError:
            pass
