"""Browser libraries that ship inside Python packages, served by the hub itself (no CDN:
the hub runs on internal networks).

plotly.js comes with the `plotly` package (package_data/plotly.min.js). The view hands the
file to WhiteNoise, which sets Content-Type, ETag and Last-Modified and answers conditional
and range requests; the URL carries plotly's version, so browsers may cache it forever.
Pages load it with `{% load hub %}<script src="{% plotly_js_url %}"></script>`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import plotly
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_safe
from whitenoise.base import WhiteNoise
from whitenoise.middleware import WhiteNoiseMiddleware

PLOTLY_VERSION = plotly.__version__
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def plotly_js_url() -> str:
    return reverse("dashboard:plotly_js", args=[PLOTLY_VERSION])


@functools.cache
def _plotly_file():
    files = WhiteNoise(None, immutable_file_test=lambda path, url: True)
    return files.get_static_file(str(PLOTLY_JS), plotly_js_url())


@require_safe
def plotly_js(request: HttpRequest, version: str) -> HttpResponse:
    """The bundled plotly.min.js; public like any static file, so no login is asked."""
    if version != PLOTLY_VERSION:
        raise Http404("This hub serves plotly.js " + PLOTLY_VERSION)
    return WhiteNoiseMiddleware.serve(_plotly_file(), request)
