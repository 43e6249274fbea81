"""One view serves the page and its HTMX fragment, and one redirect serves both kinds of request."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django_htmx.http import HttpResponseClientRedirect


def render_page_or_fragment(request: HttpRequest, template_name: str, fragment: str | None,
                            context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    """The template's `fragment` (a partialdef) for an HTMX request, else the whole page.

    A history restore (the browser going back to a page htmx no longer holds) needs the whole
    page, as does every request when `fragment` is None.
    """
    if fragment and request.htmx and not request.htmx.history_restore_request:
        template_name = f"{template_name}#{fragment}"
    return render(request, template_name, context, status=status)


def redirect_page(request: HttpRequest, url: str) -> HttpResponse:
    """After a write: htmx loads `url` as a whole page (HX-Redirect); a plain form gets a 302."""
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
