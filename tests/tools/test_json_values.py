"""The values a tool call carries: exact numbers in and out of every JSON the hub stores, integral
numbers as integers, text a database can store, and messages without Python reprs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core import jsoncodec
from core.audit.models import AuditEntry
from core.erp.models import SalesOrderLine
from core.erp.values import as_float
from core.errors import ToolError
from core.events import bus
from core.events.models import Event
from core.imports.models import ImportJob, ImportRowError
from core.tools import arguments, idempotency
from core.tools.models import BatchRun, IdempotencyRecord
from core.tools.pipeline import call_tool
from core.webhooks.models import Subscription

MONEY = [Decimal("99.95"), Decimal("0.10"), Decimal("12345678901234.56"), Decimal("9999999999999999.99"),
         Decimal("-0.01")]


# --- the codec -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("99.95"), "99.95"),
    (Decimal("12345678901234.56"), "12345678901234.56"),
    (Decimal("9999999999999999.99"), "9999999999999999.99"),  # no float holds this
    (Decimal("200.00"), "200.0"),  # as a float was written: trailing zeros are no part of the number
    (Decimal("0.30"), "0.3"),
    (Decimal("-0.00"), "-0.0"),
    (Decimal("1E+2"), "100.0"),
    (Decimal("1.50E+45"), "1.5E+45"),  # long: exponent notation
    (Decimal("1E-999999999"), "1E-999999999"),  # a short input never becomes a huge output
    (Decimal("1.000000000000000000000000000001"), "1.000000000000000000000000000001"),  # 31 digits
])
def test_a_decimal_is_written_as_its_exact_number(value, text):
    assert jsoncodec.dumps(value) == text
    assert jsoncodec.dumps({"a": [value]}) == f'{{"a": [{text}]}}'
    assert jsoncodec.dumps([value], indent=1) == f"[\n {text}\n]"  # the pure-Python path too
    again = jsoncodec.loads(text)
    assert isinstance(again, Decimal) and again == value


def test_values_without_a_decimal_are_written_as_the_standard_library_does():
    value = {"b": [1, 2.5, None, True, "Müller \u2603"], "a": {"x": -0.0, "y": 1e16}}
    for options in ({}, {"ensure_ascii": True}, {"sort_keys": True}, {"indent": 2}, {"separators": (",", ":")}):
        expected = json.dumps(value, **{"ensure_ascii": False, **options})
        assert jsoncodec.dumps(value, **options) == expected
        assert jsoncodec.dumps({**value, "d": Decimal("1.5")}, **options) == json.dumps(
            {**value, "d": 1.5}, **{"ensure_ascii": False, **options})


def test_django_json_fields_use_the_encoder_with_its_own_options():
    # JSONField calls json.dumps(value, cls=Encoder): ASCII escapes, the library's separators.
    assert json.dumps({"n": Decimal("99.95"), "s": "é"}, cls=jsoncodec.Encoder) == '{"n": 99.95, "s": "\\u00e9"}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity")])
def test_numbers_json_does_not_have_are_refused(value):
    with pytest.raises(ValueError):
        jsoncodec.dumps({"x": value})


def test_dates_are_iso_text():
    assert jsoncodec.dumps({"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}) == '{"at": "2026-01-02T03:04:05+00:00"}'


def test_stripped_never_rounds():
    long = Decimal("1.000000000000000000000000000001")  # more digits than the Decimal context keeps
    assert jsoncodec.stripped(long) == long
    assert long.normalize() != long
    assert str(jsoncodec.stripped(Decimal("100.00"))) == str(Decimal("100.00").normalize()) == "1E+2"
    assert str(jsoncodec.stripped(Decimal("0.000"))) == "0"


# --- every JSON column -------------------------------------------------------------------------


@pytest.mark.parametrize("amount", MONEY)
def test_batch_requests_and_results_keep_exact_money(writer, amount):
    run = BatchRun.objects.create(batch_id="B-exact", user=writer, requests=[
        {"tool": "ax_post_payment", "arguments": {"amount": amount}}], results=[{"output": {"amount": amount}}])
    run.refresh_from_db()
    stored = run.requests[0]["arguments"]["amount"]
    assert isinstance(stored, Decimal) and stored == amount
    assert run.results[0]["output"]["amount"] == amount


def test_idempotent_outcomes_and_webhook_filters_keep_exact_money(writer, db):
    IdempotencyRecord.objects.create(user=writer, key="k", tool="t", request_digest="d",
                                     response={"amount": Decimal("12345678901234.56")})
    assert IdempotencyRecord.objects.get().response == {"amount": Decimal("12345678901234.56")}
    sub = Subscription.objects.create(subscription_id="sub_x", event_type="*", url="http://127.0.0.1/",
                                      secret_encrypted="x", filters={"min_amount": Decimal("999.99")})
    sub.refresh_from_db()
    assert sub.filters == {"min_amount": Decimal("999.99")}


def test_published_events_keep_exact_money(db):
    bus.publish("payment.posted", {"amount": Decimal("9999999999999999.99"), "fee": 0.5})
    data = Event.objects.get().data
    assert data["amount"] == Decimal("9999999999999999.99")
    assert data["fee"] == Decimal("0.5")


def test_import_rows_and_other_json_columns_take_decimals(writer, db):
    job = ImportJob.objects.create(job_id="IMP-x", user=writer, type="items", format="csv", dialect={"x": 1})
    ImportRowError.objects.create(job=job, row=2, column="unit_price", code="INVALID_NUMBER", message="m",
                                  data={"unit_price": Decimal("1.005")})
    assert ImportRowError.objects.get().data == {"unit_price": 1.005}


def test_money_outputs_are_exact_numbers():
    assert as_float(Decimal("249.90")) == 249.9 and isinstance(as_float(Decimal("249.90")), float)
    # Beyond what a float holds to the cent, the output keeps the Decimal, written digit for digit.
    big = as_float(Decimal("99999999999999.99"))
    assert jsoncodec.dumps(big) == "99999999999999.99"


# --- integers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [2.0, Decimal("2.0"), Decimal("2"), Decimal("0.2E+1")])
def test_an_integral_number_is_an_integer_and_the_service_gets_an_int(writer, erp, quantity):
    order = call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                               "lines": [{"item_id": "ITEM-001", "quantity": quantity}]}, writer)
    assert order["lines"][0]["quantity"] == 2 and type(order["lines"][0]["quantity"]) is int
    assert SalesOrderLine.objects.get().quantity == 2


@pytest.mark.parametrize("quantity", [Decimal("1.5"), 1.5, Decimal("1E+999999999")])
def test_a_fraction_is_no_integer_and_the_message_shows_json(writer, erp, quantity):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                           "lines": [{"item_id": "ITEM-001", "quantity": quantity}]}, writer)
    error = exc.value
    assert (error.code, error.field) == ("VALIDATION_ERROR", "lines.0.quantity")
    assert error.message == f"lines.0.quantity: {quantity} is not of type 'integer'"


def test_messages_never_show_python_reprs(writer, erp):
    for args in ({"customer_account": Decimal("1.5")},
                 {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": Decimal("-3.0")}]},
                 {"customer_account": "CUST-001", "lines": Decimal("2.50")}):
        with pytest.raises(ToolError) as exc:
            call_tool("ax_create_salesorder", args, writer)
        assert "Decimal" not in exc.value.message, exc.value.message
    assert "-3 is less than the minimum of 1" in exc_message(writer, {"quantity": Decimal("-3.0")})


def exc_message(user, line: dict) -> str:
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_salesorder", {"customer_account": "CUST-001",
                                           "lines": [{"item_id": "ITEM-001", **line}]}, user)
    return exc.value.message


def test_integers_follow_the_schema_only_where_it_expects_one():
    schema = {"type": "object", "properties": {
        "n": {"type": "integer"}, "price": {"type": "number"}, "any": {},
        "rows": {"type": "array", "items": {"type": "object", "properties": {"q": {"type": ["integer", "null"]}}}},
        "pick": {"oneOf": [{"type": "integer"}, {"type": "string"}]}}}
    value = {"n": Decimal("3.0"), "price": Decimal("3.0"), "any": 4.0, "rows": [{"q": 5.0}, {"q": None}],
             "pick": Decimal("6.00")}
    out = arguments.integers(schema, value)
    assert out == {"n": 3, "price": Decimal("3.0"), "any": 4.0, "rows": [{"q": 5}, {"q": None}], "pick": 6}
    assert [type(out[k]) for k in ("n", "price", "any", "pick")] == [int, Decimal, float, int]
    assert value["n"] == Decimal("3.0") and type(value["n"]) is Decimal  # the caller's value is left alone
    untouched = {"price": 1.5}
    assert arguments.integers(schema, untouched) is untouched


# --- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "field"), [
    ({"customer_account": "CUST-9", "name": "Ab\ud800c", "currency": "EUR"}, "name"),
    ({"customer_account": "CUST-9", "name": "x", "currency": "EUR", "\udcff": 1}, "\\udcff"),
    ({"customer_account": "CUST-9", "name": "x\x00", "currency": "EUR"}, "name"),
])
def test_text_no_database_stores_is_refused_naming_the_field_and_audited(writer, erp, args, field):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_customer", args, writer)
    error = exc.value
    assert (error.code, error.field) == ("VALIDATION_ERROR", field)
    assert error.message.startswith(f"{field}: text must")
    error.message.encode("utf-8")  # printable anywhere: no lone surrogate left
    entry = AuditEntry.objects.get()
    assert (entry.tool, entry.success, entry.error_code) == ("ax_create_customer", False, "VALIDATION_ERROR")
    assert entry.error_message == error.message


def test_a_lone_surrogate_in_a_nested_key_is_named_by_its_path(writer, erp):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_batch_operations", {"requests": [{"tool": "ax_get_customer",
                                                        "arguments": {"customer_account": "\ud800"}}]}, writer)
    assert exc.value.field == "requests.0.arguments.customer_account"
    assert "\\ud800 is a lone surrogate" in exc.value.message


def test_a_tool_name_or_key_no_database_stores_is_audited_with_escapes(writer, erp):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_\ud800", {}, writer)
    assert exc.value.code == "TOOL_NOT_FOUND"
    with pytest.raises(ToolError) as exc:
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, writer, idempotency_key="k\ud800\x00")
    assert (exc.value.code, exc.value.field) == ("VALIDATION_ERROR", "idempotency_key")
    rows = list(AuditEntry.objects.order_by("id").values_list("tool", "idempotency_key", "error_code"))
    assert rows == [("ax_\\ud800", "", "TOOL_NOT_FOUND"), ("ax_get_customer", "k\\ud800\\x00", "VALIDATION_ERROR")]


# --- idempotency keys ----------------------------------------------------------------------------

KEY_PATTERN = r"^[ -~]*[!-~][ -~]*$"  # as the OpenAPI document states it


@pytest.mark.parametrize("key", ["a", "order-4711", "k" * 255, " padded key ", "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./"])
def test_keys_of_printable_ascii_are_accepted(writer, erp, key):
    import re

    assert idempotency.check_key(key) == key
    assert re.fullmatch(KEY_PATTERN, key)


@pytest.mark.parametrize("key", ["", " ", "   ", "k" * 256, "tab\there", "line\nbreak", "nul\x00", "é", "\u00a0x",
                                 "zero\u200bwidth", "\ud800", 17])
def test_other_keys_are_refused_with_the_rule(key):
    import re

    with pytest.raises(ToolError) as exc:
        idempotency.check_key(key)
    assert (exc.value.code, exc.value.field) == ("VALIDATION_ERROR", "idempotency_key")
    assert "printable ASCII" in exc.value.message
    assert not (isinstance(key, str) and len(key) <= 255 and re.fullmatch(KEY_PATTERN, key))


def test_digest_tells_long_decimals_apart_and_keeps_equal_numbers_together():
    one = idempotency.digest("t", {"a": Decimal("1.000000000000000000000000000001")})
    two = idempotency.digest("t", {"a": Decimal("1.000000000000000000000000000002")})
    assert one != two
    assert len({idempotency.digest("t", {"a": v}) for v in (10, 10.0, Decimal("10.00"), Decimal("1E+1"))}) == 1
