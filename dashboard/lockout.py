"""The answer to a log-in while django-axes holds the username locked out from this address.

The log-in page again, with the form, saying why and for how long. It is the same for every
username, existing or not, so it never tells who has an account.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def locked_out(request: HttpRequest, response: HttpResponse | None = None,
               credentials: dict | None = None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with the log-in page and Retry-After."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    context = {"form": AuthenticationForm(request), "locked_out": True, "lockout_minutes": -(-seconds // 60)}
    page = render(request, "registration/login.html", context, status=429)
    page["Retry-After"] = str(seconds)
    return page
