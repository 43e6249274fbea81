"""Roles are Django groups. MCP roles are ordered: Admin implies Write implies Read."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

MCP_READ = "MCP_Read"
MCP_WRITE = "MCP_Write"
MCP_ADMIN = "MCP_Admin"
STAKEHOLDER = "Stakeholder"

MCP_ROLES = (MCP_READ, MCP_WRITE, MCP_ADMIN)
ALL_ROLES = (*MCP_ROLES, STAKEHOLDER)
ROLE_LEVEL = {MCP_READ: 1, MCP_WRITE: 2, MCP_ADMIN: 3}


def group_names(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The user's group names, looked up once per user object."""
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    cached = getattr(user, "_ax_groups", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._ax_groups = cached
    return cached


def role_level(user: AbstractBaseUser | AnonymousUser) -> int:
    """0 for no MCP role, 1 read, 2 write, 3 admin. Active superusers count as admins."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return 0
    if user.is_superuser:
        return ROLE_LEVEL[MCP_ADMIN]
    return max((ROLE_LEVEL.get(name, 0) for name in group_names(user)), default=0)


def has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    if role == STAKEHOLDER:
        return role_level(user) >= ROLE_LEVEL[MCP_ADMIN] or STAKEHOLDER in group_names(user)
    return role_level(user) >= ROLE_LEVEL[role]


def may_see_all(level: int) -> bool:
    """Who sees whose batches and imports, the same in the dashboard, the API and MCP: an
    admin sees every user's, everyone else only their own."""
    return level >= ROLE_LEVEL[MCP_ADMIN]


def owned_by_or_admin(rows: QuerySet, user: AbstractBaseUser, level: int) -> QuerySet:
    """The rows (of a model with a `user` field) a caller at role `level` may see."""
    return rows if may_see_all(level) else rows.filter(user=user)


def primary_role(user: AbstractBaseUser | AnonymousUser) -> str | None:
    level = role_level(user)
    for name, lvl in ROLE_LEVEL.items():
        if lvl == level:
            return name
    return STAKEHOLDER if STAKEHOLDER in group_names(user) else None
