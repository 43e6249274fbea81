"""Roles as people read them: `{% load roles %}{{ user_role|role_label }}` gives "Writer" for
MCP_Write. The role names of the API and the tokens stay MCP_Read, MCP_Write, MCP_Admin and
Stakeholder; templates keep them in the chip's title."""

from __future__ import annotations

from django import template

from core.accounts.roles import MCP_ADMIN, MCP_READ, MCP_WRITE, STAKEHOLDER

register = template.Library()

ROLE_LABELS = {MCP_ADMIN: "Admin", MCP_WRITE: "Writer", MCP_READ: "Reader", STAKEHOLDER: "Stakeholder"}


@register.filter
def role_label(role: str | None) -> str:
    return ROLE_LABELS.get(role or "", role or "")
