"""Content-Security-Policy on every page, nosniff on the API, HTTPS settings from the environment."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from dashboard.vendor import plotly_style_sources
from tests.security.asgi import mcp

pytestmark = pytest.mark.django_db

ROOT = Path(django_settings.BASE_DIR)
TEMPLATES = ROOT / "templates"


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


@pytest.fixture
def as_admin(admin) -> Client:
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    client = Client()
    client.force_login(admin)
    return client


def test_every_page_sends_a_policy_without_inline_script_or_style(as_admin):
    for url in ("/overview/", "/audit/", "/batches/", "/imports/", "/webhooks/", "/tools/", "/roi/",
                "/roi/baselines/", "/admin/"):
        response = as_admin.get(url)
        assert response.status_code == 200, url
        directives = policy(response)
        assert directives["default-src"] == ["'self'"], url
        assert directives["script-src"] == ["'self'"], url
        assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"], url
        assert directives["frame-ancestors"] == ["'none'"] and directives["form-action"] == ["'self'"], url
        assert "'unsafe-inline'" not in response["Content-Security-Policy"], url
        assert "'unsafe-eval'" not in response["Content-Security-Policy"], url
        expected_styles = ["'self'", *plotly_style_sources()] if url == "/roi/" else ["'self'"]
        assert directives["style-src"] == expected_styles, url


def test_the_log_in_page_and_api_answers_carry_the_policy_too(client):
    assert policy(client.get("/accounts/login/"))["script-src"] == ["'self'"]
    api = client.get("/api/tools")
    assert api.status_code == 401
    assert policy(api)["default-src"] == ["'self'"]
    assert api["X-Content-Type-Options"] == "nosniff"
    assert client.get("/api/openapi.json")["X-Content-Type-Options"] == "nosniff"


def test_the_roi_page_admits_exactly_the_styles_plotly_makes():
    empty, maplibre = plotly_style_sources()
    assert empty == "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"  # sha256 of ""
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", maplibre)


@pytest.mark.parametrize("path", sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")))
def test_templates_hold_no_inline_script_handler_or_style(path):
    html = re.sub(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}", "", (TEMPLATES / path).read_text(), flags=re.S)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert [s for s in scripts if "src=" not in s and 'type="application/json"' not in s] == [], path
    assert re.findall(r"\son[a-z]+\s*=", html) == [], path
    assert re.findall(r"\sstyle\s*=", html) == [], path
    assert "<style" not in html and "javascript:" not in html, path


# --- HTTPS -----------------------------------------------------------------------------------


def test_https_settings_redirect_plain_http_but_not_the_health_check(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    redirected = client.get("/accounts/login/")
    assert redirected.status_code == 301 and redirected["Location"] == "https://testserver/accounts/login/"
    assert client.get("/api/tools").status_code == 301
    assert client.get("/healthz").status_code in (200, 503)


def test_hsts_and_secure_cookies_over_https(client, settings, reader):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    page = client.get("/accounts/login/", secure=True)
    assert page["Strict-Transport-Security"] == "max-age=3600; includeSubDomains"
    assert page.cookies["csrftoken"]["secure"] is True
    logged_in = client.post("/accounts/login/", {"username": "reader", "password": "reader-pass-1"}, secure=True)
    assert logged_in.cookies["sessionid"]["secure"] is True


@pytest.mark.django_db(transaction=True)
def test_mcp_answers_carry_nosniff_and_follow_the_https_settings(settings):
    plain = mcp("203.0.113.5")
    assert plain.status_code == 401 and plain.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in plain.headers
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    redirected = mcp("203.0.113.5", base_url="http://hub.example.com")
    assert redirected.status_code == 301 and redirected.headers["location"] == "https://hub.example.com/mcp"
    secure = mcp("203.0.113.5", base_url="https://hub.example.com")
    assert secure.status_code == 401
    assert secure.headers["strict-transport-security"] == "max-age=3600; includeSubDomains"
    assert secure.headers["x-content-type-options"] == "nosniff"
    # Behind a TLS proxy trusted through SECURE_PROXY_SSL_HEADER.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = mcp("203.0.113.5", base_url="http://hub.example.com", headers={"X-Forwarded-Proto": "https"})
    assert proxied.status_code == 401 and "strict-transport-security" in proxied.headers


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    environment.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
                          text=True, timeout=120)


def _settings_line(**env: str) -> list[str]:
    script = ("from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
              "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
              "s.SECURE_PROXY_SSL_HEADER is not None)")
    result = _manage("shell", "--verbosity", "0", "-c", script, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_check_deploy_is_clean_with_https_on(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", HTTPS="1", DEBUG="0",
                     SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="hub.example.com",
                     AX_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_https_settings_come_from_the_environment(tmp_path):
    var = str(tmp_path)
    assert _settings_line(AX_VAR_DIR=var) == ["False", "False", "False", "0", "False", "False"]
    assert _settings_line(HTTPS="1", AX_VAR_DIR=var) == ["True", "True", "True", "31536000", "True", "False"]
    assert _settings_line(HTTPS="1", SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="600", SECURE_PROXY_SSL_HEADER="1",
                          AX_VAR_DIR=var) == ["True", "True", "False", "600", "True", "True"]
