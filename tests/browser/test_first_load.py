"""First impressions, on the hub as `make run` starts it: a fresh database with the demo and
its history, collectstatic, uvicorn. The ROI page, plotly.js and all, loads in under a second
on a cold browser cache; the favicon is there; keyboard focus shows on the dark top bar."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, screenshot, watch_csp

pytestmark = pytest.mark.browser

ROOT = Path(settings.BASE_DIR)
FIRST_LOAD_MS = 1000
COLD_LOADS = 3
START_TIMEOUT = 180  # a loaded machine migrates and seeds slowly


def allowed_ms() -> float:
    """FIRST_LOAD_MS on a machine with a core to spare for the page, more in proportion when
    every core is busy (the suite's other worker, other work on the machine): what the page
    costs is CPU, parsing plotly.js and drawing three charts, so a shared core stretches it."""
    busy = os.getloadavg()[0] / (os.cpu_count() or 1)
    return FIRST_LOAD_MS * max(1.0, busy)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory) -> Iterator[str]:
    """The hub in its own process, with its own var/ (database, static files), as `make run` has it."""
    var = tmp_path_factory.mktemp("var")
    env = {**os.environ, "AX_VAR_DIR": str(var), "LOG_LEVEL": "WARNING", "DEBUG": "0"}
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)

    def manage(*args: str) -> None:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, timeout=START_TIMEOUT,
                       stdout=subprocess.DEVNULL)

    manage("migrate", "--noinput", "-v0")
    manage("seed_demo")
    manage("collectstatic", "--noinput", "-v0")
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "uvicorn", "core.asgi:application", "--host", "127.0.0.1",
                            "--port", str(port), "--no-access-log", "--log-level", "warning"], cwd=ROOT, env=env)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if web.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the hub did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        web.terminate()
        web.wait(10)


def new_page(browser, base_url: str):
    context = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return context, page, errors, watch_csp(page)


def log_in_as_admin(page) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("admin-demo-pass")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url("/overview/")


def first_roi_load(browser, base_url: str, shot: bool = False) -> dict:
    """Log in (the overview loads the stylesheet and htmx), then open ROI for the first time:
    plotly.js comes from the server, not the browser's cache."""
    context, page, errors, violations = new_page(browser, base_url)
    try:
        log_in_as_admin(page)
        page.goto("/roi/")
        expect(page.locator("[data-roi-chart=timeline] .main-svg").first).to_be_visible()
        page.wait_for_function("performance.getEntriesByType('navigation')[0].loadEventEnd > 0")
        timing = page.evaluate("""() => {
            const nav = performance.getEntriesByType('navigation')[0];
            const plotly = performance.getEntriesByType('resource').find(r => r.name.includes('/plotly-basic'));
            return {load_ms: nav.loadEventEnd, url: plotly && plotly.name,
                    encoded: plotly && plotly.encodedBodySize, decoded: plotly && plotly.decodedBodySize};
        }""")
        if shot:
            screenshot(page, "first-roi-load")
        assert errors == [] and violations == [], (errors, violations)
        return timing
    finally:
        context.close()


def test_the_first_roi_page_loads_in_under_a_second_with_plotly_compressed(browser, demo_hub):
    loads = [first_roi_load(browser, demo_hub, shot=n == 0) for n in range(COLD_LOADS)]
    timing = loads[0]
    # collectstatic's name (content hash) and brotli: 1.2 MB of plotly.js in about a third of a MB.
    assert "/static/vendor/plotly/plotly-basic.min." in timing["url"] and timing["url"].endswith(".js")
    assert timing["decoded"] > 1_000_000 and timing["encoded"] < timing["decoded"] / 3, timing
    fastest, allowed = min(load["load_ms"] for load in loads), allowed_ms()
    print(f"first ROI page loads (ms, each on a cold cache): {[round(load['load_ms']) for load in loads]}, "
          f"allowed {allowed:.0f}")
    assert fastest < allowed, loads


def test_the_tab_shows_the_favicon_and_keyboard_focus_shows_on_the_dark_bar(browser, demo_hub):
    context, page, errors, violations = new_page(browser, demo_hub)
    try:
        log_in_as_admin(page)
        icon = page.locator("link[rel=icon]")
        expect(icon).to_have_attribute("type", "image/svg+xml")
        answer = page.request.get(icon.get_attribute("href"))
        assert answer.ok and answer.headers["content-type"] == "image/svg+xml"

        page.keyboard.press("Tab")  # the skip link
        page.keyboard.press("Tab")  # the brand, on the dark top bar
        focused = page.evaluate("""() => {
            const el = document.activeElement, style = getComputedStyle(el);
            return {inBar: !!el.closest('.topbar'), outline: style.outlineStyle, color: style.outlineColor,
                    width: style.outlineWidth};
        }""")
        assert focused == {"inBar": True, "outline": "solid", "color": "rgb(156, 194, 255)", "width": "2px"}
        page.keyboard.press("Tab")
        expect(page.locator(".topbar .nav a").first).to_be_focused()
        screenshot(page, "focus-on-the-top-bar", full_page=False)
        assert errors == [] and violations == [], (errors, violations)
    finally:
        context.close()
