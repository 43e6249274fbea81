"""The dashboard's areas: one list that feeds the navigation, the overview and the home page.

A page that a later issue adds (Webhooks, Imports, ROI) registers itself with one entry in
AREAS: its URL name, label, required role and a line for the overview. Nothing else in the
dashboard needs to change for it to show up, and only for users who may open it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from core.accounts.roles import MCP_ADMIN, MCP_READ, STAKEHOLDER, has_role


@dataclass(frozen=True)
class Area:
    url_name: str
    label: str
    role: str
    description: str = ""
    # URL prefix that marks the area as current in the nav; defaults to the area's own URL.
    prefix: str | None = None
    # An extra condition besides the role, e.g. Django's admin also needs is_staff.
    allowed: Callable[[object], bool] | None = None
    # Shown on the overview only (the overview itself is not a card on the overview).
    on_overview: bool = True
    # Shown in the nav at the right, after the areas (the Django admin).
    secondary: bool = False

    def url(self) -> str | None:
        try:
            return reverse(self.url_name)
        except NoReverseMatch:  # an area whose URLs are not wired (yet) stays hidden
            return None

    def visible_to(self, user) -> bool:
        if not has_role(user, self.role):
            return False
        return self.allowed is None or bool(self.allowed(user))


def _is_staff(user) -> bool:
    return bool(user.is_active and user.is_staff)


AREAS: list[Area] = [
    Area("dashboard:overview", "Overview", MCP_READ, "Calls today, failures and the latest activity.",
         on_overview=False),
    Area("dashboard:customers", "Customers", MCP_READ, "Customers by account or name, with orders, invoices, "
         "payments, balance and history."),
    Area("dashboard:items", "Items", MCP_READ, "Items with stock, reservations, open order lines and history."),
    Area("dashboard:salesorders", "Sales orders", MCP_READ, "Sales orders by customer, status, date and amount, "
         "with lines, invoice and payments."),
    Area("dashboard:audit", "Audit log", MCP_READ, "Every tool call: who, what, via which way in, and how it ended."),
    Area("dashboard:batches", "Batches", MCP_READ, "Batch runs with live progress and per-operation results."),
    Area("dashboard:imports", "Imports", MCP_READ, "Bulk imports of customers, items and orders from CSV or Excel."),
    Area("dashboard:webhooks", "Webhooks", MCP_ADMIN, "Subscriptions, live deliveries, retries, the event store."),
    Area("dashboard:roi", "ROI", STAKEHOLDER, "Operations, hours and money saved against manual baselines."),
    Area("dashboard:tools", "Tools", MCP_READ, "The ax_* tools with their roles and input schemas."),
    # Later areas add one line here, e.g.:
    # Area("dashboard:webhooks", "Webhooks", MCP_READ, "Subscriptions and deliveries."),
    # Area("dashboard:roi", "ROI", STAKEHOLDER, "Time and cost saved per tool."),
    Area("admin:index", "Admin", MCP_ADMIN, "Django admin for every model, django-q2 tasks and schedules.",
         allowed=_is_staff, secondary=True),
]


@dataclass(frozen=True)
class NavLink:
    area: Area
    url: str
    current: bool


def links_for(user, path: str = "") -> list[NavLink]:
    """The areas this user may open, in order, with the one holding `path` marked current."""
    if user is None or not user.is_authenticated:
        return []
    links = []
    for area in AREAS:
        if not area.visible_to(user):
            continue
        url = area.url()
        if url is None:
            continue
        prefix = area.prefix or url
        current = path == url if prefix == "/" else path.startswith(prefix)
        links.append(NavLink(area, url, current))
    return links
