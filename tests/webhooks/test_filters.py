"""The filter language: equality, any-of lists, amount bounds, and refusals at subscribe time."""

from __future__ import annotations

import pytest

from core.errors import ToolError
from core.webhooks.filters import Filters, validate, validate_event_type

ORDER = {"sales_id": "SO-1", "customer_account": "CUST-001", "currency": "EUR", "total_amount": 1500.0,
         "status": "open"}


@pytest.mark.parametrize(("filters", "matches"), [
    ({}, True),
    ({"customer_account": "CUST-001"}, True),
    ({"customer_account": "CUST-002"}, False),
    ({"customer_account": ["CUST-002", "CUST-001"]}, True),
    ({"min_amount": 1000}, True),
    ({"min_amount": 1500}, True),
    ({"min_amount": 1500.01}, False),
    ({"max_amount": 1499.99}, False),
    ({"min_amount": 1000, "max_amount": 2000, "currency": "EUR"}, True),
    ({"customer_account": "CUST-001", "currency": "USD"}, False),
    ({"total_amount": 1500}, True),  # 1500 equals 1500.0
    ({"status": True}, False),  # a boolean is not the string
])
def test_matching(filters, matches):
    assert Filters.from_json(validate("salesorder.created", filters)).matches(ORDER) is matches


def test_payments_compare_their_amount():
    payment = {"payment_id": "PAY-1", "customer_account": "CUST-001", "amount": 250.0}
    assert Filters.from_json({"min_amount": 200}).matches(payment)
    assert not Filters.from_json({"min_amount": 300}).matches(payment)


def test_an_event_without_amount_never_matches_an_amount_filter():
    assert not Filters.from_json({"min_amount": 0}).matches({"item_id": "ITEM-001"})


def test_an_unknown_key_is_refused_naming_the_allowed_ones():
    with pytest.raises(ToolError) as refused:
        validate("salesorder.created", {"customer": "CUST-001"})
    assert refused.value.field == "filters.customer"
    assert "customer_account" in refused.value.message and "min_amount" in refused.value.message


def test_prefix_subscriptions_accept_the_fields_of_any_covered_type():
    assert validate("salesorder.*", {"cancel_reason": "duplicate"}) == {"cancel_reason": "duplicate"}
    with pytest.raises(ToolError):
        validate("salesorder.*", {"payment_id": "PAY-1"})


@pytest.mark.parametrize("bad", [{"min_amount": "1000"}, {"min_amount": True}, {"currency": {"a": 1}},
                                 {"currency": []}, {"min_amount": 10, "max_amount": 5}, ["currency"]])
def test_malformed_filters_are_refused(bad):
    with pytest.raises(ToolError):
        validate("salesorder.created", bad)


@pytest.mark.parametrize("event_type", ["*", "salesorder.*", "inventory.low_stock", "customer.updated"])
def test_event_types(event_type):
    assert validate_event_type(event_type) == event_type


@pytest.mark.parametrize("event_type", ["salesorder", "order.*", "webhook.test", "", "salesorder.deleted"])
def test_unknown_event_types_are_refused(event_type):
    with pytest.raises(ToolError):
        validate_event_type(event_type)
