"""plotly.js, served by the hub itself (no CDN: the hub runs on internal networks).

The hub ships plotly.js's basic bundle (bar, pie and scatter traces, all the ROI page draws) as
a static file, static/vendor/plotly/plotly-basic.min.js (version and source in the README
beside it). Like every static file it is served by WhiteNoise: after collectstatic with a
content hash in its name (cached for good) and gzip or brotli compressed, 1.2 MB becoming
about 330 kB on the wire.

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

from csp.decorators import csp_update
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.views.decorators.http import require_safe

PLOTLY_VERSION = "4.1.1"
PLOTLY_STATIC = "vendor/plotly/plotly-basic.min.js"
PLOTLY_JS = Path(settings.BASE_DIR) / "static" / PLOTLY_STATIC


def plotly_js_url() -> str:
    return static(PLOTLY_STATIC)


@require_safe
def plotly_js(request: HttpRequest, version: str) -> HttpResponse:
    """Where earlier hubs served plotly.js (a page cached from then still finds it)."""
    return HttpResponsePermanentRedirect(plotly_js_url())


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
