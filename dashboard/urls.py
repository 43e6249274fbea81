from __future__ import annotations

from django.urls import include, path

from dashboard import audit, batches, vendor, views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("overview/", views.overview, name="overview"),
    path("audit/", audit.audit_log, name="audit"),
    path("batches/", batches.batch_list, name="batches"),
    path("batches/new/", batches.batch_new, name="batch_new"),
    path("batches/<str:batch_id>/", batches.batch_detail, name="batch_detail"),
    path("", include("dashboard.webhook_urls")),  # /webhooks/… (dashboard/webhook_urls.py)
    path("tools/", views.tools, name="tools"),
    path("vendor/plotly-<str:version>.min.js", vendor.plotly_js, name="plotly_js"),
]
