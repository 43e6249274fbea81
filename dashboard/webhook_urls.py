"""URLs of the webhook pages; included by dashboard/urls.py into the dashboard namespace."""

from __future__ import annotations

from django.urls import path

from dashboard import webhook_views as views

urlpatterns = [
    path("webhooks/", views.subscription_list, name="webhooks"),
    path("webhooks/new/", views.subscription_new, name="webhook_new"),
    path("webhooks/deliveries/", views.delivery_list, name="webhook_deliveries"),
    path("webhooks/deliveries/retry-failed/", views.delivery_retry_failed, name="webhook_retry_failed"),
    path("webhooks/deliveries/<str:delivery_id>/", views.delivery_detail, name="webhook_delivery"),
    path("webhooks/deliveries/<str:delivery_id>/retry/", views.delivery_retry, name="webhook_delivery_retry"),
    path("webhooks/events/", views.event_list, name="webhook_events"),
    path("webhooks/<str:subscription_id>/", views.subscription_detail, name="webhook_detail"),
    path("webhooks/<str:subscription_id>/edit/", views.subscription_edit, name="webhook_edit"),
    path("webhooks/<str:subscription_id>/secret/", views.subscription_secret, name="webhook_secret"),
    path("webhooks/<str:subscription_id>/<str:action>/", views.subscription_action, name="webhook_action"),
]
