"""Browser assets are served by the hub itself: the stylesheet, htmx and plotly.js."""

from __future__ import annotations

import plotly
import pytest
from django.template import engines
from django.test import Client

from dashboard.vendor import PLOTLY_JS, plotly_js_url

pytestmark = pytest.mark.django_db


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_plotly_js_url_is_versioned_and_available_to_templates():
    url = plotly_js_url()
    assert url == f"/vendor/plotly-{plotly.__version__}.min.js"
    rendered = engines["django"].from_string("{% load hub %}<script src=\"{% plotly_js_url %}\"></script>").render({})
    assert rendered == f'<script src="{url}"></script>'


def test_plotly_js_is_served_as_cacheable_javascript_without_login():
    response = Client().get(plotly_js_url())
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "immutable" in response["Cache-Control"]
    content = body(response)
    assert len(content) == PLOTLY_JS.stat().st_size > 1_000_000
    assert b"plotly" in content[:2000].lower()


def test_plotly_js_answers_conditional_requests_with_304():
    first = Client().get(plotly_js_url())
    again = Client().get(plotly_js_url(), headers={"If-None-Match": first["ETag"]})
    assert again.status_code == 304


def test_plotly_js_of_another_version_is_not_found_and_writes_are_refused():
    assert Client().get("/vendor/plotly-0.0.1.min.js").status_code == 404
    assert Client().post(plotly_js_url()).status_code == 405


def test_pages_load_css_and_htmx_from_this_server(client, reader):
    client.force_login(reader)
    html = client.get("/overview/").content.decode()
    assert '<link rel="stylesheet" href="/static/css/hub.css">' in html
    assert 'src="/static/django_htmx/htmx-2.min.js"' in html
    assert "https://" not in html
    for path in ("/static/css/hub.css", "/static/django_htmx/htmx-2.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert body(response)
