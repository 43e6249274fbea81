"""GET /healthz: the health report for process managers and load balancers, without login."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.ops import health


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    report = health.check()
    return JsonResponse(report.public(), status=200 if report.ok else 503)
