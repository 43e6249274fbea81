"""The HTTP tool API: what a client sees for good and for every kind of bad request."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client
from jsonschema import Draft202012Validator

from core.accounts.models import ApiToken
from core.accounts.roles import MCP_READ, MCP_WRITE
from core.accounts.services import grant_role
from core.audit.models import AuditEntry
from core.erp.models import Customer, SalesOrder
from core.tools import ratelimit
from core.tools.registry import all_tools
from tests.helpers import make_api

ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}


def assert_error(response, status: int, code: str) -> dict:
    """The response is the documented JSON error with this status and code; returns the error."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    error = json.loads(response.content)["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


# --- happy paths ---------------------------------------------------------------------------


def test_create_salesorder_returns_the_order(writer_api, erp):
    response = writer_api.call("ax_create_salesorder", ORDER)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["sales_id"].startswith("SO-")
    assert (body["total_amount"], body["currency"], body["status"]) == (200.0, "EUR", "open")
    order = SalesOrder.objects.get(sales_id=body["sales_id"])
    assert order.total_amount == Decimal("200.00")
    assert AuditEntry.objects.get().via == "http"


def test_money_in_the_request_stays_exact(writer_api, erp):
    # 0.1 * 3 is 0.30000000000000004 in binary floating point; the hub reads JSON numbers as Decimal.
    raw = '{"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 3, "unit_price": 0.1}]}'
    response = writer_api.call("ax_create_salesorder", raw=raw)
    assert response.status_code == 200
    assert b'"total_amount": 0.3,' in response.content
    assert response.json()["total_amount"] == 0.3
    assert SalesOrder.objects.get(sales_id=response.json()["sales_id"]).total_amount == Decimal("0.30")


def test_tool_list_shows_every_tool_with_schema_and_allowed_flag(reader_api):
    response = reader_api.get("/api/tools")
    assert response.status_code == 200
    listed = {t["name"]: t for t in response.json()["tools"]}
    assert set(listed) == {t.name for t in all_tools()}
    for tool in all_tools():
        entry = listed[tool.name]
        assert entry["input_schema"] == tool.input_schema
        assert entry["role"] == tool.role
        assert entry["allowed"] is (tool.role == MCP_READ)
    assert listed["ax_get_customer"]["allowed"] and not listed["ax_create_salesorder"]["allowed"]


def test_tool_list_allows_everything_to_an_admin_token(admin_api):
    tools = admin_api.get("/api/tools").json()["tools"]
    assert tools and all(t["allowed"] for t in tools)


def test_tool_list_allowed_flag_follows_the_users_current_role(client, writer):
    # A write token whose user has since lost the write role can no longer write; the list
    # must not promise otherwise.
    api = make_api(client, writer, MCP_WRITE)
    writer.groups.clear()
    grant_role(writer, MCP_READ)
    listed = {t["name"]: t["allowed"] for t in api.get("/api/tools").json()["tools"]}
    assert listed["ax_get_customer"] is True
    assert listed["ax_create_salesorder"] is False
    assert_error(api.call("ax_create_salesorder", ORDER), 403, "FORBIDDEN")


def test_openapi_document_has_one_path_per_tool(client, db):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] and doc["info"]["version"]
    assert doc["servers"][0]["url"] == "http://testserver"
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    tools = {t.name: t for t in all_tools()}
    tool_paths = {p for p in doc["paths"] if p != "/api/tools"}
    assert tool_paths == {f"/api/tools/{name}" for name in tools}
    operation_ids = []
    for name, tool in tools.items():
        operation = doc["paths"][f"/api/tools/{name}"]["post"]
        operation_ids.append(operation["operationId"])
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == tool.input_schema
        Draft202012Validator.check_schema(schema)
        for status in ("200", "401", "403", "422", "429"):
            assert operation["responses"][status]["description"]
    assert len(operation_ids) == len(set(operation_ids))
    # Every $ref points at something the document defines.
    text = response.content.decode()
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]


# --- authentication and roles ----------------------------------------------------------------


def test_missing_token_is_unauthorized(client, erp):
    response = client.post("/api/tools/ax_create_salesorder", data=ORDER, content_type="application/json")
    assert_error(response, 401, "UNAUTHORIZED")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert SalesOrder.objects.count() == 0


@pytest.mark.parametrize(
    "header",
    [
        "Bearer axh_not-a-real-token",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "axh_without_scheme",
        "Bearer " + "axh_" + "x" * 5000,
    ],
)
def test_invalid_token_is_unauthorized(client, erp, header):
    response = client.post(
        "/api/tools/ax_get_customer",
        data={"customer_account": "CUST-001"},
        content_type="application/json",
        headers={"Authorization": header},
    )
    assert_error(response, 401, "UNAUTHORIZED")
    assert "WWW-Authenticate" in response


def test_tool_list_needs_a_token(client, db):
    response = client.get("/api/tools")
    assert_error(response, 401, "UNAUTHORIZED")
    assert "WWW-Authenticate" in response


def test_revoked_token_is_unauthorized(writer_api, erp):
    assert writer_api.call("ax_get_customer", {"customer_account": "CUST-001"}).status_code == 200
    ApiToken.objects.get().revoke()
    assert_error(writer_api.call("ax_get_customer", {"customer_account": "CUST-001"}), 401, "UNAUTHORIZED")
    assert_error(writer_api.get("/api/tools"), 401, "UNAUTHORIZED")


def test_token_of_an_inactive_user_is_unauthorized(writer_api, writer, erp):
    writer.is_active = False
    writer.save()
    assert_error(writer_api.call("ax_get_customer", {"customer_account": "CUST-001"}), 401, "UNAUTHORIZED")


def test_reader_cannot_call_a_write_tool(reader_api, erp):
    assert_error(reader_api.call("ax_create_salesorder", ORDER), 403, "FORBIDDEN")
    assert SalesOrder.objects.count() == 0


def test_token_role_caps_an_admins_rights(client, admin, erp):
    api = make_api(client, admin, MCP_READ)
    assert api.call("ax_get_customer", {"customer_account": "CUST-001"}).status_code == 200
    assert_error(api.call("ax_create_salesorder", ORDER), 403, "FORBIDDEN")


# --- routing and methods --------------------------------------------------------------------


def test_unknown_tool_is_not_found(writer_api):
    error = assert_error(writer_api.call("ax_drop_database", {}), 404, "TOOL_NOT_FOUND")
    assert "ax_drop_database" in error["message"]


def test_get_on_a_tool_is_method_not_allowed(writer_api):
    response = writer_api.get("/api/tools/ax_get_customer")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "POST"


def test_post_on_the_tool_list_is_method_not_allowed(writer_api):
    response = writer_api.client.post("/api/tools", headers={"Authorization": f"Bearer {writer_api.token}"})
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "GET"


def test_post_on_openapi_is_a_json_405_even_with_csrf_checks(db):
    # A real client has no CSRF token; the answer must still be the API's JSON, not Django's HTML 403.
    response = Client(enforce_csrf_checks=True).post("/api/openapi.json", data="{}", content_type="application/json")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "GET"


def test_tool_call_needs_no_csrf_token(writer_api, erp):
    api_client = Client(enforce_csrf_checks=True)
    response = api_client.post(
        "/api/tools/ax_get_customer",
        data={"customer_account": "CUST-001"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {writer_api.token}"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/", "/api/nope", "/api/tools/", "/api/tools/ax_get_customer/extra", "/api/openapi.yaml"]
)
def test_unknown_api_path_is_a_json_404(client, db, path):
    assert_error(client.get(path), 404, "NOT_FOUND")
    assert_error(client.post(path, data="{}", content_type="application/json"), 404, "NOT_FOUND")


# --- bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "{not json",
        '{"customer_account": "CUST-001",}',
        '{"customer_account": NaN}',
        '{"amount": Infinity}',
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        b'{"customer_account": "\xff\xfe"}',
    ],
)
def test_malformed_json_is_invalid_json(writer_api, erp, raw):
    assert_error(writer_api.call("ax_get_customer", raw=raw), 400, "INVALID_JSON")
    assert SalesOrder.objects.count() == 0


@pytest.mark.parametrize("raw", ["[]", '[{"customer_account": "CUST-001"}]', '"CUST-001"', "42", "null"])
def test_body_that_is_not_an_object_is_a_validation_error(writer_api, erp, raw):
    error = assert_error(writer_api.call("ax_get_customer", raw=raw), 422, "VALIDATION_ERROR")
    assert "object" in error["message"]


def test_empty_body_means_no_arguments(writer_api, erp):
    error = assert_error(writer_api.call("ax_get_customer", raw=""), 422, "VALIDATION_ERROR")
    assert "customer_account" in error["message"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": "two"}]}, "lines.0.quantity"),
        ({"customer_account": 42, "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, "customer_account"),
        ({"customer_account": "CUST-001", "lines": {"item_id": "ITEM-001"}}, "lines"),
        ({"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": True}]}, "lines.0.quantity"),
        (
            {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 1, "unit_price": "1"}]},
            "lines.0.unit_price",
        ),
    ],
)
def test_wrong_types_are_validation_errors_naming_the_field(writer_api, erp, arguments, field):
    error = assert_error(writer_api.call("ax_create_salesorder", arguments), 422, "VALIDATION_ERROR")
    assert error["field"] == field
    assert field in error["message"]
    assert SalesOrder.objects.count() == 0


def test_unknown_argument_is_refused(writer_api, erp):
    error = assert_error(
        writer_api.call("ax_get_customer", {"customer_account": "CUST-001", "evil": 1}), 422, "VALIDATION_ERROR"
    )
    assert "evil" in error["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml"]
)
def test_wrong_content_type_is_unsupported_media_type(writer_api, erp, content_type):
    response = writer_api.call("ax_get_customer", raw='{"customer_account": "CUST-001"}', content_type=content_type)
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_json_content_type_with_charset_is_accepted(writer_api, erp):
    response = writer_api.call(
        "ax_get_customer", {"customer_account": "CUST-001"}, content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Müller GmbH"


def test_body_over_the_limit_is_payload_too_large(settings, writer_api, erp):
    settings.API_MAX_BODY_BYTES = 200
    small = {"customer_account": "CUST-001"}
    assert writer_api.call("ax_get_customer", small).status_code == 200
    big = {**ORDER, "customer_ref": "x" * 300}
    error = assert_error(writer_api.call("ax_create_salesorder", big), 413, "PAYLOAD_TOO_LARGE")
    assert "200" in error["message"]
    assert SalesOrder.objects.count() == 0


def test_bad_content_length_is_a_json_error(writer_api, erp):
    response = writer_api.client.post(
        "/api/tools/ax_get_customer",
        data='{"customer_account": "CUST-001"}',
        content_type="application/json",
        CONTENT_LENGTH="lots",
        headers={"Authorization": f"Bearer {writer_api.token}"},
    )
    assert_error(response, 400, "INVALID_JSON")


# --- business errors ------------------------------------------------------------------------


def test_unknown_customer_is_not_found(writer_api, erp):
    error = assert_error(
        writer_api.call("ax_create_salesorder", {**ORDER, "customer_account": "CUST-999"}), 404, "CUST_NOT_FOUND"
    )
    assert error["field"] == "customer_account"


def test_insufficient_stock_is_unprocessable(writer_api, erp):
    response = writer_api.call(
        "ax_create_salesorder", {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-002", "quantity": 6}]}
    )
    error = assert_error(response, 422, "INSUFFICIENT_STOCK")
    assert error["details"] == {"item_id": "ITEM-002", "available": 5, "requested": 6}
    erp["desk"].refresh_from_db()
    assert erp["desk"].reserved == 0


def test_existing_customer_is_a_conflict(writer_api, erp):
    response = writer_api.call(
        "ax_create_customer", {"customer_account": "CUST-001", "name": "Again", "currency": "EUR"}
    )
    assert_error(response, 409, "CUST_ALREADY_EXISTS")
    assert Customer.objects.get(customer_account="CUST-001").name == "Müller GmbH"


def test_too_many_decimals_in_money_is_refused(writer_api, erp):
    response = writer_api.call(
        "ax_create_salesorder",
        {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 1, "unit_price": 0.001}]},
    )
    assert_error(response, 422, "INVALID_NUMBER")


# --- rate limit and idempotency ---------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(settings, monkeypatch, writer_api, erp):
    settings.RATE_LIMIT_PER_MINUTE = 2
    # A fixed clock keeps all calls in one window, whenever the test runs.
    monkeypatch.setattr(ratelimit, "clock", lambda: 60_000.0 + 15)
    for _ in range(2):
        assert writer_api.call("ax_get_customer", {"customer_account": "CUST-001"}).status_code == 200
    response = writer_api.call("ax_get_customer", {"customer_account": "CUST-001"})
    error = assert_error(response, 429, "RATE_LIMITED")
    assert response["Retry-After"] == "45"
    assert error["retry_after"] == 45


def test_idempotency_key_replays_the_first_answer(writer_api, erp):
    first = writer_api.call("ax_create_salesorder", ORDER, key="order-42")
    second = writer_api.call("ax_create_salesorder", ORDER, key="order-42")
    assert first.status_code == second.status_code == 200
    assert second.json()["sales_id"] == first.json()["sales_id"]
    assert second.json() == first.json()
    assert SalesOrder.objects.count() == 1
    erp["chair"].refresh_from_db()
    assert erp["chair"].reserved == 2
    assert list(AuditEntry.objects.order_by("id").values_list("replayed", flat=True)) == [False, True]


def test_idempotency_key_replays_a_business_error(writer_api, erp):
    order = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-002", "quantity": 6}]}
    assert_error(writer_api.call("ax_create_salesorder", order, key="k-1"), 422, "INSUFFICIENT_STOCK")
    assert_error(writer_api.call("ax_create_salesorder", order, key="k-1"), 422, "INSUFFICIENT_STOCK")
    assert AuditEntry.objects.filter(replayed=True).count() == 1


def test_idempotency_key_reused_with_other_arguments_is_a_conflict(writer_api, erp):
    assert writer_api.call("ax_create_salesorder", ORDER, key="order-43").status_code == 200
    other = {**ORDER, "lines": [{"item_id": "ITEM-001", "quantity": 3}]}
    assert_error(writer_api.call("ax_create_salesorder", other, key="order-43"), 409, "IDEMPOTENCY_KEY_REUSED")
    assert SalesOrder.objects.count() == 1


def test_idempotency_keys_are_per_user(writer_api, client, admin, erp):
    admin_api = make_api(client, admin, MCP_WRITE)
    first = writer_api.call("ax_create_salesorder", ORDER, key="shared").json()
    second = admin_api.call("ax_create_salesorder", ORDER, key="shared").json()
    assert first["sales_id"] != second["sales_id"]
    assert SalesOrder.objects.count() == 2


def test_invalid_idempotency_key_is_refused(writer_api, erp):
    error = assert_error(writer_api.call("ax_create_salesorder", ORDER, key="k" * 256), 422, "VALIDATION_ERROR")
    assert error["field"] == "idempotency_key"
    assert SalesOrder.objects.count() == 0
