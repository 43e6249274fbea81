"""The webhook tools through the pipeline: roles, the story's arguments, secrets shown once."""

from __future__ import annotations

import pytest

from core.errors import ToolError
from core.tools.pipeline import call_tool
from core.webhooks import crypto
from core.webhooks.models import Subscription

STORY = {
    "event_type": "salesorder.created",
    "webhook_url": "https://n8n.example.com/webhook/order",
    "filters": {"customer_account": "CUST-001", "min_amount": 1000},
    "secret": "webhook-secret-key",
    "retry_policy": {"max_retries": 3, "backoff_ms": 1000},
}


def test_subscribe_with_the_story_arguments(admin):
    result = call_tool("ax_subscribe_webhook", STORY, admin)
    assert result["subscription_id"].startswith("sub_")
    assert result["filters"] == STORY["filters"] and result["retry_policy"] == STORY["retry_policy"]
    assert result["status"] == "active" and "secret" not in result
    sub = Subscription.objects.get(subscription_id=result["subscription_id"])
    assert "webhook-secret-key" not in sub.secret_encrypted
    assert crypto.decrypt(sub.secret_encrypted) == "webhook-secret-key"


def test_a_generated_secret_is_returned_once_and_never_listed(admin):
    result = call_tool("ax_subscribe_webhook", {"event_type": "*", "webhook_url": "https://example.com/in"}, admin)
    secret = result["secret"]
    assert secret.startswith("whsec_") and len(crypto.key_bytes(secret)) >= 24
    listed = call_tool("ax_list_webhooks", {}, admin)["subscriptions"]
    assert [s["subscription_id"] for s in listed] == [result["subscription_id"]]
    assert secret not in str(listed) and "secret" not in listed[0]
    assert listed[0]["deliveries"] == {"pending": 0, "failed": 0, "succeeded": 0}


@pytest.mark.parametrize("user_fixture", ["writer", "reader"])
def test_webhook_tools_need_mcp_admin(request, user_fixture):
    user = request.getfixturevalue(user_fixture)
    for tool, args in (("ax_subscribe_webhook", STORY), ("ax_list_webhooks", {}), ("ax_get_failed_webhooks", {}),
                       ("ax_retry_webhook_delivery", {"delivery_id": "dlv_x"})):
        with pytest.raises(ToolError) as refused:
            call_tool(tool, args, user)
        assert refused.value.code == "FORBIDDEN"


def test_unknown_filter_key_is_a_clear_error(admin):
    with pytest.raises(ToolError) as refused:
        call_tool("ax_subscribe_webhook", {**STORY, "filters": {"customer": "CUST-001"}}, admin)
    assert refused.value.code == "VALIDATION_ERROR" and "unknown filter 'customer'" in refused.value.message


def test_short_secret_and_bad_policy_are_refused(admin):
    for args in ({**STORY, "secret": "short"}, {**STORY, "secret": "whsec_!!notbase64!!!!"},
                 {**STORY, "retry_policy": {"max_retries": 99}}):
        with pytest.raises(ToolError) as refused:
            call_tool("ax_subscribe_webhook", args, admin)
        assert refused.value.code == "VALIDATION_ERROR"


def test_pause_resume_edit_rotate_and_unsubscribe(admin):
    sub_id = call_tool("ax_subscribe_webhook", STORY, admin)["subscription_id"]
    paused = call_tool("ax_update_webhook", {"subscription_id": sub_id, "status": "paused"}, admin)
    assert paused["status"] == "paused"
    edited = call_tool("ax_update_webhook", {"subscription_id": sub_id, "filters": {"currency": ["EUR", "USD"]},
                                             "status": "active"}, admin)
    assert edited["filters"] == {"currency": ["EUR", "USD"]} and edited["status"] == "active"
    rotated = call_tool("ax_rotate_webhook_secret", {"subscription_id": sub_id}, admin)
    assert rotated["secret"].startswith("whsec_") and rotated["previous_secret_valid_until"]
    listed = call_tool("ax_list_webhooks", {}, admin)["subscriptions"][0]
    assert listed["secret_rotation_ends"] == rotated["previous_secret_valid_until"]
    assert call_tool("ax_unsubscribe_webhook", {"subscription_id": sub_id}, admin) == {
        "subscription_id": sub_id, "deleted": True}
    with pytest.raises(ToolError) as missing:
        call_tool("ax_unsubscribe_webhook", {"subscription_id": sub_id}, admin)
    assert missing.value.code == "SUBSCRIPTION_NOT_FOUND"


def test_retry_needs_one_target_and_a_known_delivery(admin):
    with pytest.raises(ToolError) as refused:
        call_tool("ax_retry_webhook_delivery", {}, admin)
    assert refused.value.code == "VALIDATION_ERROR"
    with pytest.raises(ToolError) as missing:
        call_tool("ax_retry_webhook_delivery", {"delivery_id": "dlv_nope"}, admin)
    assert missing.value.code == "DELIVERY_NOT_FOUND"


def test_failed_webhooks_time_range_must_be_iso(admin):
    with pytest.raises(ToolError) as refused:
        call_tool("ax_get_failed_webhooks", {"since": "yesterday"}, admin)
    assert refused.value.code == "VALIDATION_ERROR"
    assert call_tool("ax_get_failed_webhooks", {"since": "2026-01-01T00:00:00Z"}, admin) == {
        "deliveries": [], "count": 0}
