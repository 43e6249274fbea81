"""Template context: the navigation a user may see and the role shown beside the name."""

from __future__ import annotations

from django.http import HttpRequest

from core.accounts.roles import primary_role
from dashboard.nav import links_for


def nav(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": [], "user_role": None}
    return {"nav_links": links_for(user, request.path), "user_role": primary_role(user)}
