"""Idempotency keys: one request per key and user, replayed however often it is sent."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from core.audit.models import AuditEntry
from core.erp.models import Item, SalesOrder
from core.errors import ToolError
from core.tools import idempotency
from core.tools.models import IdempotencyRecord
from core.tools.pipeline import call_tool

ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}


def create_order(user, key: str, arguments=None) -> dict:
    return call_tool("ax_create_salesorder", ORDER if arguments is None else arguments, user, idempotency_key=key)


def refused(code: str, user, key, arguments=None) -> ToolError:
    with pytest.raises(ToolError) as exc:
        create_order(user, key, arguments)
    assert exc.value.code == code, exc.value.message
    return exc.value


def reserved(item_id: str = "ITEM-001") -> int:
    return Item.objects.get(item_id=item_id).reserved


def audit_rows() -> list[AuditEntry]:
    return list(AuditEntry.objects.order_by("id"))


def test_replay_returns_the_identical_output_and_creates_nothing(writer, erp):
    first = create_order(writer, "order-1")
    second = create_order(writer, "order-1")
    assert second == first
    assert SalesOrder.objects.count() == 1 and reserved() == 2
    rows = audit_rows()
    assert [(r.success, r.replayed, r.idempotency_key) for r in rows] == [(True, False, "order-1"),
                                                                          (True, True, "order-1")]
    assert rows[0].arguments_digest == rows[1].arguments_digest


def test_replay_answers_from_the_record_not_the_current_state(writer, erp):
    first = create_order(writer, "order-1")
    call_tool("ax_cancel_salesorder", {"sales_id": first["sales_id"]}, writer)
    assert create_order(writer, "order-1")["status"] == "open"
    assert SalesOrder.objects.get().status == "cancelled"


def test_stored_business_error_is_replayed_as_the_same_error(writer, erp):
    too_many = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-002", "quantity": 6}]}
    original = refused("INSUFFICIENT_STOCK", writer, "order-1", too_many)
    call_tool("ax_adjust_inventory", {"item_id": "ITEM-002", "quantity_change": 10, "reason": "delivery"}, writer)
    replayed = refused("INSUFFICIENT_STOCK", writer, "order-1", too_many)
    assert (replayed.message, replayed.details) == (original.message, original.details)
    assert not SalesOrder.objects.exists()
    assert [(r.error_code, r.replayed) for r in audit_rows() if r.tool == "ax_create_salesorder"] == [
        ("INSUFFICIENT_STOCK", False), ("INSUFFICIENT_STOCK", True)]
    # The stock would suffice now: only the key keeps the old answer.
    assert create_order(writer, "order-2", too_many)["status"] == "open"


def test_key_reused_with_other_arguments_is_refused_and_writes_nothing(writer, erp):
    first = create_order(writer, "order-1")
    refused("IDEMPOTENCY_KEY_REUSED", writer, "order-1",
            {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 3}]})
    assert list(SalesOrder.objects.values_list("sales_id", flat=True)) == [first["sales_id"]]
    assert reserved() == 2
    record = IdempotencyRecord.objects.get()
    assert record.response == first
    last = audit_rows()[-1]
    assert (last.success, last.error_code, last.replayed) == (False, "IDEMPOTENCY_KEY_REUSED", False)


def test_key_reused_for_another_tool_is_refused(writer, erp):
    create_order(writer, "order-1")
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_customer", {"customer_account": "CUST-100", "name": "Fabrikam", "currency": "EUR"},
                  writer, idempotency_key="order-1")
    assert exc.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert not IdempotencyRecord.objects.filter(tool="ax_create_customer").exists()


def test_keys_are_scoped_per_user(writer, admin, erp):
    mine = create_order(writer, "shared-key")
    theirs = create_order(admin, "shared-key")
    assert mine["sales_id"] != theirs["sales_id"]
    assert SalesOrder.objects.count() == 2 and reserved() == 4
    assert not any(r.replayed for r in audit_rows())


def test_expired_record_is_not_replayed(settings, writer, erp):
    first = create_order(writer, "order-1")
    age = timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS, minutes=1)
    IdempotencyRecord.objects.update(created=timezone.now() - age)
    second = create_order(writer, "order-1")
    assert second["sales_id"] != first["sales_id"]
    assert SalesOrder.objects.count() == 2 and reserved() == 4
    record = IdempotencyRecord.objects.get()  # the expired record was replaced, not duplicated
    assert record.response == second and record.created > timezone.now() - timedelta(minutes=1)
    assert audit_rows()[-1].replayed is False


def test_expired_key_may_carry_other_arguments(settings, writer, erp):
    create_order(writer, "order-1")
    IdempotencyRecord.objects.update(created=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS + 1))
    out = create_order(writer, "order-1", {"customer_account": "CUST-001",
                                           "lines": [{"item_id": "ITEM-002", "quantity": 1}]})
    assert out["lines"][0]["item_id"] == "ITEM-002"


def test_record_just_inside_the_ttl_is_replayed(settings, writer, erp):
    first = create_order(writer, "order-1")
    age = timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS) - timedelta(minutes=1)
    IdempotencyRecord.objects.update(created=timezone.now() - age)
    assert create_order(writer, "order-1") == first
    assert SalesOrder.objects.count() == 1


@pytest.mark.parametrize("key", ["", "   ", "k" * 256, "line\nbreak"])
def test_invalid_key_is_validation_error(writer, erp, key):
    error = refused("VALIDATION_ERROR", writer, key)
    assert error.field == "idempotency_key"
    assert not SalesOrder.objects.exists() and not IdempotencyRecord.objects.exists()
    assert audit_rows()[-1].error_code == "VALIDATION_ERROR"


def test_key_of_255_characters_is_accepted(writer, erp):
    key = "k" * 255
    assert create_order(writer, key) == create_order(writer, key)
    assert IdempotencyRecord.objects.get().key == key


def test_call_refused_before_running_does_not_use_up_the_key(writer, erp):
    refused("VALIDATION_ERROR", writer, "order-1", {"customer_account": "CUST-001", "lines": []})
    assert create_order(writer, "order-1")["status"] == "open"


def test_digest_ignores_argument_order_and_number_spelling():
    a = idempotency.digest("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [
        {"item_id": "ITEM-001", "quantity": 10, "unit_price": 10}]})
    b = idempotency.digest("ax_create_salesorder", {"lines": [
        {"unit_price": 10.0, "quantity": 10.0, "item_id": "ITEM-001"}], "customer_account": "CUST-001"})
    c = idempotency.digest("ax_create_salesorder", {"lines": [
        {"unit_price": Decimal("10.00"), "quantity": 10, "item_id": "ITEM-001"}], "customer_account": "CUST-001"})
    assert a == b == c


@pytest.mark.parametrize("other", [
    ("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 100}]}),
    ("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 1}]}),
    ("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 10,
                                                                         "unit_price": 10.01}]}),
    ("ax_create_salesorder", {"customer_account": "CUST-002", "lines": [{"item_id": "ITEM-001", "quantity": 10}]}),
    ("ax_get_salesorder", {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 10}]}),
])
def test_digest_tells_different_requests_apart(other):
    base = idempotency.digest("ax_create_salesorder",
                              {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 10}]})
    assert idempotency.digest(*other) != base


def test_same_request_spelled_differently_is_replayed(writer, erp):
    first = create_order(writer, "order-1", {"customer_account": "CUST-001", "lines": [
        {"item_id": "ITEM-001", "quantity": 2, "unit_price": 10}]})
    second = create_order(writer, "order-1", {"lines": [
        {"unit_price": 10.0, "quantity": 2, "item_id": "ITEM-001"}], "customer_account": "CUST-001"})
    assert second == first
    assert SalesOrder.objects.count() == 1 and audit_rows()[-1].replayed is True


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_with_one_key_create_one_order(writer, erp):
    threads_count = 8
    start = threading.Barrier(threads_count)
    results: list[dict] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            user = get_user_model().objects.get(pk=writer.pk)  # each request loads its own user
            start.wait(timeout=30)
            out = create_order(user, "concurrent-key")
            with lock:
                results.append(out)
        except BaseException as error:  # reported by the main thread
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(results) == threads_count
    assert len({out["sales_id"] for out in results}) == 1
    assert all(out == results[0] for out in results)
    assert list(SalesOrder.objects.values_list("sales_id", flat=True)) == [results[0]["sales_id"]]
    assert reserved() == 2
    assert IdempotencyRecord.objects.count() == 1
    rows = AuditEntry.objects.filter(tool="ax_create_salesorder")
    assert rows.count() == threads_count
    assert rows.filter(replayed=False).count() == 1
