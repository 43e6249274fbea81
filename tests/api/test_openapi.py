"""The OpenAPI document states the contract the server enforces: errors, headers, inputs."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, validators

from core.api.openapi import BATCH_ONLY, ERROR_CODES, IDEMPOTENCY_KEY, TOOL_ERRORS
from core.erp import values
from core.errors import ToolError
from core.roi import services as roi_services
from core.tools import idempotency
from core.tools.registry import _multiple_of, all_tools, get_tool
from core.tools.schemas import DATE_TIME, KEY

ROOT = Path(__file__).resolve().parents[2]
ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}


@pytest.fixture
def document(client, db):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


def documented_error(document: dict, status: int) -> Draft202012Validator:
    return Draft202012Validator(document["components"]["schemas"][f"Error{status}"])


def assert_documented(document: dict, response, operation: dict | None = None) -> dict:
    """The response's status is listed (for the operation, when given) and its body fits the schema."""
    status = response.status_code
    if operation is not None:
        assert str(status) in operation["responses"], status
    body = json.loads(response.content)
    errors = [e.message for e in documented_error(document, status).iter_errors(body)]
    assert errors == [], body
    return body["error"]


# --- errors ----------------------------------------------------------------------------------


def test_every_tool_lists_every_error_status_with_the_error_object(document):
    for tool in all_tools():
        responses = document["paths"][f"/api/tools/{tool.name}"]["post"]["responses"]
        assert sorted(int(s) for s in responses if s != "200") == TOOL_ERRORS
        for status in TOOL_ERRORS:
            schema = responses[str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/Error{status}"}
    assert {400, 401, 403, 404, 405, 409, 411, 413, 415, 422, 429, 500, 503} == set(TOOL_ERRORS)


def test_tool_list_is_documented_with_its_401(document):
    operation = document["paths"]["/api/tools"]["get"]
    assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert document["security"] == [{"bearer": []}] and "security" not in operation


def test_each_status_lists_the_codes_it_carries(document):
    schemas = document["components"]["schemas"]
    for code in ERROR_CODES:
        if code in BATCH_ONLY:
            continue
        status = ToolError(code, "").http_status
        assert code in schemas[f"Error{status}"]["properties"]["error"]["properties"]["code"]["enum"], code
    assert schemas["Error429"]["properties"]["error"]["properties"]["code"] == {"enum": ["RATE_LIMITED"]}


def raised_codes() -> set[str]:
    """Every code core/ raises: ToolError("CODE", …) and the batch runner's bad(…, "CODE")."""
    pattern = re.compile(r'(?:ToolError|bad)\(\s*(?:[^()]*?,\s*)?"([A-Z][A-Z0-9_]+)"')
    codes = set()
    for path in (ROOT / "core").rglob("*.py"):
        if "migrations" not in path.parts:
            codes |= set(pattern.findall(path.read_text()))
    return codes


def test_the_error_catalogue_is_complete():
    raised = raised_codes()
    assert {"VALIDATION_ERROR", "INSUFFICIENT_STOCK", "NESTED_BATCH_NOT_ALLOWED", "NOT_EXECUTED"} <= raised
    assert raised - set(ERROR_CODES) == set(), "codes the server raises that the document does not list"
    # And nothing listed that nothing raises (codes of ToolError.from_dict replays are the same codes).
    assert set(ERROR_CODES) - raised == set()


def test_real_error_responses_fit_the_documented_schemas(document, client, reader_api, writer_api, erp):
    tool = document["paths"]["/api/tools/ax_create_salesorder"]["post"]
    unauthorized = client.post("/api/tools/ax_get_customer", data="{}", content_type="application/json")
    assert assert_documented(document, unauthorized, tool)["code"] == "UNAUTHORIZED"
    assert unauthorized["WWW-Authenticate"].startswith("Bearer")
    cases = [
        (writer_api.call("ax_create_salesorder", raw="{"), "INVALID_JSON"),
        (reader_api.call("ax_create_salesorder", ORDER), "FORBIDDEN"),
        (reader_api.call("ax_get_customer", {"customer_account": "CUST-404"}), "CUST_NOT_FOUND"),
        (writer_api.call("ax_create_salesorder", raw="{}", content_type="text/plain"), "UNSUPPORTED_MEDIA_TYPE"),
        (writer_api.call("ax_create_salesorder", {"customer_account": "CUST-001"}), "VALIDATION_ERROR"),
        (writer_api.call("ax_create_salesorder", {"customer_account": "CUST-001", "lines": [
            {"item_id": "ITEM-002", "quantity": 6}]}), "INSUFFICIENT_STOCK"),
        (writer_api.call("ax_create_customer", {"customer_account": "CUST-001", "name": "X", "currency": "EUR"}),
         "CUST_ALREADY_EXISTS"),
    ]
    for response, code in cases:
        assert assert_documented(document, response, tool)["code"] == code
    not_allowed = reader_api.get("/api/tools/ax_get_customer")
    assert assert_documented(document, not_allowed, tool)["code"] == "METHOD_NOT_ALLOWED"
    assert not_allowed["Allow"] == "POST"


def test_the_tool_list_answer_fits_its_schema(document, reader_api):
    schema = document["paths"]["/api/tools"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert list(Draft202012Validator(schema).iter_errors(reader_api.get("/api/tools").json())) == []


# --- the Idempotency-Key header ----------------------------------------------------------------


def test_idempotency_key_header_is_documented_as_the_server_checks_it(document):
    for tool in all_tools():
        (header,) = document["paths"][f"/api/tools/{tool.name}"]["post"]["parameters"]
        assert (header["name"], header["in"], header["required"]) == ("Idempotency-Key", "header", False)
        assert header["schema"] == IDEMPOTENCY_KEY
    documented = Draft202012Validator(IDEMPOTENCY_KEY)
    candidates = [chr(c) for c in range(256)] + [chr(c) * 2 + "k" for c in range(256)] + [
        "", " ", "   ", " k ", "order-4711", "a" * 255, "a" * 256, " " * 255, "ключ", "k\u2028", "k\ufeff"]
    for key in candidates:
        try:
            idempotency.check_key(key)
            accepted = True
        except ToolError:
            accepted = False
        assert documented.is_valid(key) is accepted, repr(key)


def test_an_undocumented_idempotency_key_is_refused_over_http(writer_api, erp):
    response = writer_api.client.post("/api/tools/ax_get_customer", data={"customer_account": "CUST-001"},
                                      content_type="application/json",
                                      headers={"Authorization": f"Bearer {writer_api.token}", "Idempotency-Key": "é"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "idempotency_key"


# --- inputs: the schema says what the services check ----------------------------------------------


# The document's multipleOf read in decimal, as JSON numbers are (a float reading says 0.07 is no
# multiple of 0.01).
DECIMAL_READING = validators.extend(Draft202012Validator, {"multipleOf": _multiple_of})


@pytest.mark.parametrize(("amount", "accepted"), [("99.95", True), ("99.955", False), ("0.07", True), ("0", True),
                                                  ("9999999999999999.99", True), ("1E+16", False), ("-0.01", False)])
def test_money_schema_says_two_decimals_below_1e16(amount, accepted):
    schema = get_tool("ax_create_item").input_schema["properties"]["unit_price"]
    assert DECIMAL_READING(schema).is_valid(Decimal(amount)) is accepted
    try:
        values.money(Decimal(amount), "unit_price")
        served = True
    except ToolError:
        served = False
    assert served is accepted


@pytest.mark.parametrize(("amount", "code"), [("99.95", None), ("99.955", "INVALID_NUMBER"), ("0.07", None),
                                              ("1E+16", "INVALID_NUMBER"), ("-0.01", "VALIDATION_ERROR")])
def test_two_decimal_money_over_http(writer_api, erp, amount, code):
    response = writer_api.call("ax_post_payment", raw=f'{{"customer_account": "CUST-002", "amount": {amount}}}')
    if code is None:
        assert response.status_code == 200, response.content
        assert Decimal(str(response.json()["amount"])) == Decimal(amount)
    else:
        assert (response.status_code, response.json()["error"]["code"]) == (422, code)


def test_money_schema_keeps_the_services_codes(writer, erp):
    from core.tools.pipeline import call_tool

    for amount, code in ((99.955, "INVALID_NUMBER"), (Decimal("99.955"), "INVALID_NUMBER"), (1e16, "INVALID_NUMBER"),
                         (-1, "VALIDATION_ERROR")):
        with pytest.raises(ToolError) as refused:
            call_tool("ax_post_payment", {"customer_account": "CUST-002", "amount": amount}, writer)
        assert (refused.value.code, refused.value.field) == (code, "amount")
    assert call_tool("ax_post_payment", {"customer_account": "CUST-002", "amount": Decimal("99.95")},
                     writer)["amount"] == 99.95


def test_currency_is_any_case_as_documented(writer, db):
    from core.tools.pipeline import call_tool

    schema = Draft202012Validator(get_tool("ax_create_customer").input_schema["properties"]["currency"])
    assert schema.is_valid("usd") and schema.is_valid("EUR") and not schema.is_valid("EU1")
    out = call_tool("ax_create_customer", {"customer_account": "C-1", "name": "N", "currency": "usd"}, writer)
    assert out["currency"] == "USD"


def test_key_pattern_is_the_services_key_rule():
    for text in ("CUST-001", "a.b_c/d-e", "-CUST", "CUST 1", "é", "_x", "9", "A/"):
        assert bool(re.fullmatch(KEY.strip("^$"), text)) is bool(values.KEY_RE.match(text)), text
    schema = get_tool("ax_create_customer").input_schema["properties"]["customer_account"]
    assert schema["pattern"] == KEY and schema["maxLength"] == 20


def test_roi_dates_are_documented_as_parse_date_reads_them():
    schema = Draft202012Validator(get_tool("ax_get_roi_metrics").input_schema["properties"]["date_from"])
    for year in (1969, roi_services.MIN_YEAR, 2026, roi_services.MAX_YEAR, 3000):
        day = f"{year}-01-31"
        try:
            roi_services.parse_date(day, "date_from")
            parsed = True
        except ToolError:
            parsed = False
        assert schema.is_valid(day) is parsed, day
    assert not schema.is_valid("2026-1-31") and not schema.is_valid("٢٠٢٦-01-31")


def test_event_times_need_a_time_zone_as_documented(admin, db):
    from core.tools.pipeline import call_tool

    assert re.match(DATE_TIME, "2026-01-31T12:00:00Z") and re.match(DATE_TIME, "2026-01-31T12:00:00.5+01:00")
    for bad in ("2026-01-31T12:00:00", "2026-01-31", "2026-02-30T00:00:00Z"):
        with pytest.raises(ToolError) as refused:
            call_tool("ax_list_events", {"since": bad}, admin)
        assert (refused.value.code, refused.value.field) == ("VALIDATION_ERROR", "since")
    assert call_tool("ax_list_events", {"since": "2026-01-31T12:00:00+01:00"}, admin)["count"] == 0
