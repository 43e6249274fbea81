"""Browser libraries that ship inside Python packages, served by the hub itself (no CDN:
the hub runs on internal networks).

plotly.js comes with the `plotly` package (package_data/plotly.min.js). The view hands the
file to WhiteNoise, which sets Content-Type, ETag and Last-Modified and answers conditional
and range requests; the URL carries plotly's version, so browsers may cache it forever.
Pages load it with `{% load hub %}<script src="{% plotly_js_url %}"></script>`, and their view
is decorated with `@allows_plotly`: the Content-Security-Policy admits no inline style, and
plotly.js makes <style> elements of its own.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import plotly
from csp.decorators import csp_update
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


# plotly.js adds two kinds of <style> element: empty ones, whose rules it then inserts through
# the CSSOM (which the CSP does not govern), and, once on load, maplibre's stylesheet as text.
_STYLE_LITERAL = re.compile(r"""createElement\("style"\);?\s*(\w+)\.id="[0-9a-f]+","""
                            r"""\1\.textContent='((?:[^'\\]|\\.)*)'""")
_JS_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.DOTALL)
_JS_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _js_string(literal: str) -> str:
    def one(match: re.Match) -> str:
        code = match.group(1)
        if code[0] in "ux" and len(code) > 1:
            return chr(int(code[1:], 16))
        return _JS_SIMPLE.get(code, code)

    return _JS_ESCAPE.sub(one, literal)


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@functools.cache
def plotly_style_sources() -> tuple[str, ...]:
    """The CSP style-src hashes of exactly the <style> elements this plotly.js creates.

    Read from the bundle, so they follow an upgrade of plotly; the browser tests fail on any
    CSP violation, should a new bundle style itself another way."""
    literals = [_js_string(m.group(2)) for m in _STYLE_LITERAL.finditer(PLOTLY_JS.read_text("utf-8"))]
    return tuple(_sha256_source(text) for text in ["", *literals])


def allows_plotly(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For the views of pages that draw plotly charts. Their CSP admits plotly's own <style>s,
    and blob: images, through which the mode bar's "Download plot as a PNG" renders the chart."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        update = {"style-src": list(plotly_style_sources()), "img-src": ["blob:"]}
        return csp_update(update)(view)(request, *args, **kwargs)

    return wrapped
