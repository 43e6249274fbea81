from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import OperationalError

from core.audit.models import AuditEntry
from core.erp import services
from core.erp.models import SalesOrder
from core.errors import ToolError
from core.tools import breaker
from core.tools.pipeline import call_tool

ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}


def test_successful_call_writes_one_audit_entry(writer, erp):
    out = call_tool("ax_create_salesorder", ORDER, writer, via="cli")
    assert out["status"] == "open" and out["total_amount"] == 200.0
    entry = AuditEntry.objects.get()
    assert (entry.tool, entry.username, entry.department, entry.success, entry.via) == (
        "ax_create_salesorder", "writer", "SALES", True, "cli")
    assert len(entry.arguments_digest) == 64


def test_business_error_is_audited_and_rolled_back(writer, erp):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_salesorder", {**ORDER, "lines": [{"item_id": "ITEM-002", "quantity": 6}]}, writer)
    assert exc.value.code == "INSUFFICIENT_STOCK"
    entry = AuditEntry.objects.get()
    assert not entry.success and entry.error_code == "INSUFFICIENT_STOCK"
    assert SalesOrder.objects.count() == 0
    erp["desk"].refresh_from_db()
    assert erp["desk"].reserved == 0


def test_validation_error_names_the_field(writer, erp):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001",
                                                                                       "quantity": "two"}]}, writer)
    assert exc.value.code == "VALIDATION_ERROR"
    assert exc.value.field == "lines.0.quantity"


def test_unknown_fields_are_refused(writer, erp):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_get_customer", {"customer_account": "CUST-001", "evil": 1}, writer)
    assert exc.value.code == "VALIDATION_ERROR" and "evil" in exc.value.message


def test_unknown_tool(writer):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_drop_database", {}, writer)
    assert exc.value.code == "TOOL_NOT_FOUND"
    assert AuditEntry.objects.get().error_code == "TOOL_NOT_FOUND"


def test_token_role_caps_user_role(admin, erp):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_salesorder", ORDER, admin, role_cap=1)
    assert exc.value.code == "FORBIDDEN"


def test_rate_limit_counts_per_user(settings, writer, reader, erp):
    settings.RATE_LIMIT_PER_MINUTE = 3
    for _ in range(3):
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)
    with pytest.raises(ToolError) as exc:
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)
    assert exc.value.code == "RATE_LIMITED" and 1 <= exc.value.retry_after <= 60
    call_tool("ax_get_customer", {"customer_account": "CUST-001"}, reader)  # another user's budget


def test_rate_limit_window_resets(settings, monkeypatch, writer, erp):
    settings.RATE_LIMIT_PER_MINUTE = 1
    from core.tools import ratelimit

    monkeypatch.setattr(ratelimit, "clock", lambda: 6000.0)
    call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)
    with pytest.raises(ToolError):
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)
    monkeypatch.setattr(ratelimit, "clock", lambda: 6060.0)
    call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)


def test_calls_inside_a_batch_do_not_count_against_the_rate_limit(settings, writer, erp):
    settings.RATE_LIMIT_PER_MINUTE = 1
    for _ in range(5):
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer, batch="b-1")
    assert AuditEntry.objects.filter(batch_id="b-1").count() == 5


def _break_backend(monkeypatch):
    def fail(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "get_customer", fail)


def test_breaker_opens_on_backend_failures_not_business_errors(settings, monkeypatch, writer, erp):
    settings.CIRCUIT_FAILURE_THRESHOLD = 3
    for _ in range(5):  # business errors never trip it
        with pytest.raises(ToolError):
            call_tool("ax_get_customer", {"customer_account": "NOPE"}, writer)
    assert breaker.state() == "closed"
    _break_backend(monkeypatch)
    for _ in range(3):
        with pytest.raises(ToolError) as exc:
            call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)
        assert exc.value.code == "BACKEND_UNAVAILABLE"
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_salesorder", ORDER, writer)
    assert exc.value.code == "CIRCUIT_OPEN" and exc.value.retry_after >= 1
    assert SalesOrder.objects.count() == 0
    assert AuditEntry.objects.filter(error_code="CIRCUIT_OPEN").count() == 1


def test_breaker_half_open_probe_closes_on_success(settings, monkeypatch, writer, erp):
    settings.CIRCUIT_FAILURE_THRESHOLD = 1
    settings.CIRCUIT_RESET_SECONDS = 10
    now = [1000.0]
    monkeypatch.setattr(breaker, "clock", lambda: now[0])
    original = services.get_customer
    _break_backend(monkeypatch)
    with pytest.raises(ToolError):
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)
    assert breaker.state() == "open"
    now[0] += 11
    assert breaker.state() == "half-open"
    # A failed probe opens it again.
    with pytest.raises(ToolError) as exc:
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)
    assert exc.value.code == "BACKEND_UNAVAILABLE"
    assert breaker.state() == "open"
    now[0] += 11
    monkeypatch.setattr(services, "get_customer", original)
    assert call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)["name"] == "Müller GmbH"
    assert breaker.state() == "closed"


def test_unexpected_exception_becomes_internal_error_without_details(monkeypatch, writer, erp):
    monkeypatch.setattr(services, "get_customer", lambda *a: {}["boom"])
    with pytest.raises(ToolError) as exc:
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)
    assert exc.value.code == "INTERNAL_ERROR" and "boom" not in exc.value.message


def test_decimal_arguments_stay_exact(writer, erp):
    out = call_tool("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [
        {"item_id": "ITEM-001", "quantity": 3, "unit_price": Decimal("0.10")}]}, writer)
    assert SalesOrder.objects.get(sales_id=out["sales_id"]).total_amount == Decimal("0.30")


def test_nul_characters_are_refused_before_the_database(writer, erp):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_customer", {"customer_account": "A\x00", "name": "x", "currency": "EUR"}, writer)
    assert exc.value.code == "VALIDATION_ERROR" and exc.value.field == "customer_account"
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [
            {"item_id": "ITEM\x00", "quantity": 1}]}, writer)
    assert exc.value.field == "lines.0.item_id"


def test_data_refused_by_the_database_does_not_trip_the_breaker(settings, monkeypatch, writer, erp):
    from django.db import DataError

    settings.CIRCUIT_FAILURE_THRESHOLD = 1

    def refuse(*args, **kwargs):
        raise DataError("value too long")

    monkeypatch.setattr(services, "get_customer", refuse)
    for _ in range(3):
        with pytest.raises(ToolError) as exc:
            call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer)
        assert exc.value.code == "INVALID_DATA"
    assert breaker.state() == "closed"
