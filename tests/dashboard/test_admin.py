"""The Django admin: every model registered, list pages load, django-q2's pages reachable."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin

from tests.dashboard.conftest import audit, batch_run

pytestmark = pytest.mark.django_db

HUB_APPS = ("accounts", "erp", "tools", "events", "webhooks", "imports", "roi")


def test_every_model_of_the_hub_is_registered():
    """Registered on its own, or shown inline in its parent (order lines in their order)."""
    inline = {inline.model for model_admin in admin.site._registry.values() for inline in model_admin.inlines}
    missing = [model.__name__ for model in apps.get_models()
               if model._meta.app_label in HUB_APPS and not admin.site.is_registered(model) and model not in inline]
    assert missing == [], f"register these models in core/<area>/admin.py: {missing}"


def test_every_registered_changelist_loads_for_a_superuser(as_admin, staff_admin, erp):
    audit(staff_admin)
    batch_run(staff_admin, "B-admin")
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert as_admin.get(url).status_code == 200, url


def test_batch_runs_are_listed_and_filtered_read_only(as_admin, staff_admin, reader):
    batch_run(staff_admin, "B-listed")
    batch_run(reader, "B-queued", status="queued")
    page = as_admin.get("/admin/tools/batchrun/?status__exact=completed")
    assert b"B-listed" in page.content and b"B-queued" not in page.content
    assert b"2/2" in page.content
    assert as_admin.get("/admin/tools/batchrun/add/").status_code == 403


def test_django_q_pages_are_reachable_for_admins(as_admin):
    index = as_admin.get("/admin/django_q/")
    assert index.status_code == 200
    for name in (b"Failed tasks", b"Successful tasks", b"Scheduled tasks", b"Queued tasks"):
        assert name in index.content
    for model in ("failure", "success", "schedule", "ormq"):
        assert as_admin.get(f"/admin/django_q/{model}/").status_code == 200, model


def test_the_admin_is_closed_to_users_without_staff_status(as_writer, client):
    assert as_writer.get("/admin/django_q/").status_code == 302
    assert client.get("/admin/").status_code == 302
