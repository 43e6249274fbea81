"""Template context: the navigation a user may see."""

from __future__ import annotations

from django.http import HttpRequest

from core.accounts.roles import MCP_ADMIN, MCP_READ, has_role, primary_role


def nav(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "user_role": None}
    items = []
    if has_role(user, MCP_READ):
        items.append(("dashboard:overview", "Overview"))
        items.append(("dashboard:tools", "Tools"))
    if has_role(user, MCP_ADMIN):
        items.append(("admin:index", "Admin"))
    return {"nav_items": items, "user_role": primary_role(user)}
