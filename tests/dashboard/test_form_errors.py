"""Form errors stand beside the field they are about, not only at the top of the form."""

from __future__ import annotations

import json
import re

import pytest

from core.tools.models import BatchRun

pytestmark = pytest.mark.django_db

CHECK = {"tool": "ax_check_inventory", "arguments": {"item_id": "ITEM-001"}}


def error_beside(html: str, name: str) -> str:
    """The error shown after the control named `name` and before the next control, or "". It is
    the element the control's aria-describedby names, so a screen reader reads it with the field."""
    rest = html[html.index(f'name="{name}"'):]
    error = re.search(r'<span class="field-error" id="([^"]+)"[^>]*>([^<]+)</span>', rest)
    following = re.search(r'\sname="', rest[len(name) + 7:])
    if error is None or (following and following.start() + len(name) + 7 < error.start()):
        return ""
    assert re.search(rf'aria-describedby="[^"]*\b{error.group(1)}\b', rest[:rest.index(">")]), error.group(1)
    return error.group(2)


def test_a_refused_batch_names_the_argument_beside_the_requests(as_admin):
    html = as_admin.post("/batches/new/", {"payload": "[]", "max_parallel": 5}).content.decode()
    assert error_beside(html, "payload").startswith("VALIDATION_ERROR (requests): ")
    assert 'class="alert error"' not in html
    assert BatchRun.objects.count() == 0


def test_an_idempotency_key_the_hub_refuses_is_shown_beside_the_key(as_admin, erp):
    payload = json.dumps([CHECK])
    too_long = as_admin.post("/batches/new/", {"payload": payload, "max_parallel": 1, "idempotency_key": "k" * 300})
    assert "at most 255 characters" in error_beside(too_long.content.decode(), "idempotency_key")
    not_ascii = as_admin.post("/batches/new/", {"payload": payload, "max_parallel": 1,
                                                "idempotency_key": "bestellung-ä"})
    assert error_beside(not_ascii.content.decode(), "idempotency_key").startswith(
        "VALIDATION_ERROR (idempotency_key): ")
    assert BatchRun.objects.count() == 0


def test_a_number_out_of_range_is_shown_beside_its_field(as_admin):
    html = as_admin.post("/batches/new/", {"payload": json.dumps([CHECK]), "max_parallel": 50}).content.decode()
    assert "less than or equal to 20" in error_beside(html, "max_parallel")


def test_a_filter_value_that_is_no_choice_is_shown_beside_its_filter(as_reader):
    html = as_reader.get("/batches/?status=sometimes").content.decode()
    assert "Select a valid choice" in error_beside(html, "status")
