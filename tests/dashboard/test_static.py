"""Browser assets are served by the hub itself: the stylesheet, htmx, plotly.js and the favicon;
after collectstatic with hashed names and compressed (gzip, brotli)."""

from __future__ import annotations

import re

import brotli
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.template import engines
from django.test import Client

from dashboard.vendor import PLOTLY_JS, PLOTLY_STATIC, PLOTLY_VERSION, plotly_js_url

pytestmark = pytest.mark.django_db

MANIFEST_STORAGE = "whitenoise.storage.CompressedManifestStaticFilesStorage"


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_plotly_js_is_the_basic_bundle_of_the_pinned_version_with_its_license():
    head = PLOTLY_JS.read_text("utf-8")[:200]
    assert f"plotly.js (basic - minified) v{PLOTLY_VERSION}" in head
    assert PLOTLY_JS.stat().st_size < 1_500_000  # the full bundle is 4.8 MB
    assert "MIT License" in (PLOTLY_JS.parent / "LICENSE").read_text()
    assert PLOTLY_VERSION in (PLOTLY_JS.parent / "README.md").read_text()


def test_plotly_js_url_is_a_static_url_available_to_templates():
    url = plotly_js_url()
    assert url == f"/static/{PLOTLY_STATIC}"
    rendered = engines["django"].from_string("{% load hub %}<script src=\"{% plotly_js_url %}\"></script>").render({})
    assert rendered == f'<script src="{url}"></script>'


def test_plotly_js_is_served_as_javascript_without_login():
    response = Client().get(plotly_js_url())
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert body(response) == PLOTLY_JS.read_bytes()


def test_the_former_plotly_address_sends_browsers_to_the_static_file():
    response = Client().get("/vendor/plotly-6.3.0.min.js")
    assert response.status_code == 301 and response["Location"] == plotly_js_url()
    assert Client().post("/vendor/plotly-6.3.0.min.js").status_code == 405


def test_pages_load_css_htmx_and_the_favicon_from_this_server(client, reader):
    client.force_login(reader)
    html = client.get("/overview/").content.decode()
    assert '<link rel="stylesheet" href="/static/css/hub.css">' in html
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert 'src="/static/django_htmx/htmx-2.min.js"' in html
    assert "https://" not in html
    for path in ("/static/css/hub.css", "/static/django_htmx/htmx-2.min.js", "/static/favicon.svg"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert body(response)
    assert client.get("/static/favicon.svg")["Content-Type"] == "image/svg+xml"


def test_collectstatic_writes_hashed_compressed_files_that_are_served_compressed(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": MANIFEST_STORAGE}}
    # The hub's own files; Django's admin and django-htmx's are collected the same way, only slower.
    call_command("collectstatic", "--noinput", "--ignore", "admin", "--ignore", "django_htmx", verbosity=0)

    url = plotly_js_url()
    assert re.fullmatch(r"/static/vendor/plotly/plotly-basic\.min\.[0-9a-f]{12}\.js", url), url
    hashed = settings.STATIC_ROOT / url.removeprefix("/static/")
    original = PLOTLY_JS.read_bytes()
    assert hashed.read_bytes() == original
    brotli_copy, gzip_copy = hashed.with_name(hashed.name + ".br"), hashed.with_name(hashed.name + ".gz")
    assert brotli.decompress(brotli_copy.read_bytes()) == original
    assert len(brotli_copy.read_bytes()) < len(original) / 3 and gzip_copy.stat().st_size < len(original) / 2
    css = engines["django"].from_string("{% load static %}{% static 'css/hub.css' %}").render({})
    assert re.fullmatch(r"/static/css/hub\.[0-9a-f]{12}\.css", css), css
    assert (settings.STATIC_ROOT / "staticfiles.json").exists()

    # A new client builds its middleware, WhiteNoise included, from these settings.
    client = Client()
    compressed = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert compressed.status_code == 200
    assert compressed["Content-Encoding"] == "br" and "Accept-Encoding" in compressed["Vary"]
    assert "immutable" in compressed["Cache-Control"]
    assert brotli.decompress(body(compressed)) == original
    assert client.get(url, headers={"Accept-Encoding": "gzip"})["Content-Encoding"] == "gzip"
    plain = client.get(url)
    assert not plain.has_header("Content-Encoding") and body(plain) == original


def test_the_default_storage_of_static_files_is_the_compressed_manifest():
    # tests/conftest.py swaps it for the plain storage in every test; the project setting is this.
    from core import settings as project

    assert project.STORAGES["staticfiles"]["BACKEND"] == MANIFEST_STORAGE
    assert django_settings.STATIC_ROOT == project.STATIC_ROOT
