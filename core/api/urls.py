from __future__ import annotations

from django.urls import path, re_path

from core.api import views

app_name = "api"
urlpatterns = [
    path("tools", views.tool_list, name="tools"),
    path("tools/<str:tool>", views.tool_endpoint, name="tool"),
    path("openapi.json", views.openapi, name="openapi"),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
