"""The role matrix: every registered tool against every kind of user.

The tools are read from the registry when the tests are collected, so a newly registered
tool is covered without touching this file.
"""

from __future__ import annotations

import pytest

from core.accounts.roles import MCP_ADMIN, MCP_READ, MCP_WRITE, ROLE_LEVEL, STAKEHOLDER
from core.accounts.services import create_user
from core.audit.models import AuditEntry
from core.erp.models import SalesOrder
from core.errors import ToolError
from core.tools.pipeline import call_tool
from core.tools.registry import all_tools

TOOLS = all_tools()
# Role name (None: no role at all) and the MCP level it grants. Stakeholders see the dashboard
# but hold no MCP level, so they may call no tool.
ROLES = {"outsider": None, "stakeholder": STAKEHOLDER, "reader": MCP_READ, "writer": MCP_WRITE, "admin": MCP_ADMIN}


def level_of(role: str | None) -> int:
    return ROLE_LEVEL.get(role, 0) if role else 0


def attempt(name: str, user, **kwargs) -> ToolError | None:
    """Call `name` with no arguments; the error, if any."""
    try:
        call_tool(name, {}, user, **kwargs)
    except ToolError as error:
        return error
    return None


def test_registry_holds_the_erp_tools():
    # Guards against an empty registry making every matrix test below vacuous.
    assert len(TOOLS) >= 12
    assert {"ax_get_customer", "ax_create_salesorder", "ax_post_payment"} <= {t.name for t in TOOLS}


@pytest.mark.parametrize("role_name", list(ROLES))
@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_role_matrix(tool, role_name, db):
    role = ROLES[role_name]
    user = create_user(f"user-{role_name}", role)
    error = attempt(tool.name, user)
    if level_of(role) < tool.role_level:
        assert error is not None and error.code == "FORBIDDEN"
        entry = AuditEntry.objects.get()
        assert (entry.tool, entry.user, entry.success, entry.error_code) == (tool.name, user, False, "FORBIDDEN")
    else:
        assert error is None or error.code != "FORBIDDEN", error
        assert not AuditEntry.objects.filter(error_code="FORBIDDEN").exists()


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_token_role_cap_below_the_tool_is_forbidden_even_for_an_admin(tool, admin):
    error = attempt(tool.name, admin, role_cap=tool.role_level - 1)
    assert error is not None and error.code == "FORBIDDEN"
    assert AuditEntry.objects.get().error_code == "FORBIDDEN"


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_token_role_cap_at_the_tool_level_passes_the_role_check(tool, admin):
    error = attempt(tool.name, admin, role_cap=tool.role_level)
    assert error is None or error.code != "FORBIDDEN", error


def test_token_role_cap_never_raises_a_users_role(reader):
    error = attempt("ax_create_customer", reader, role_cap=ROLE_LEVEL[MCP_ADMIN])
    assert error is not None and error.code == "FORBIDDEN"


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_inactive_admin_is_forbidden(tool, admin):
    admin.is_active = False
    admin.save(update_fields=["is_active"])
    error = attempt(tool.name, admin)
    assert error is not None and error.code == "FORBIDDEN"
    assert AuditEntry.objects.get().error_code == "FORBIDDEN"


def test_forbidden_call_writes_nothing_but_the_audit_row(reader, erp):
    with pytest.raises(ToolError) as exc:
        call_tool("ax_create_salesorder",
                  {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 1}]}, reader)
    assert exc.value.code == "FORBIDDEN"
    assert not SalesOrder.objects.exists()
    erp["chair"].refresh_from_db()
    assert erp["chair"].reserved == 0
