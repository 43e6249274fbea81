"""Template helpers of the dashboard: `{% load hub %}`."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.html import conditional_escape, format_html, format_html_join

from core.erp.values import KEY_RE
from core.tools import jsonio
from core.webhooks import subjects
from dashboard import vendor

register = template.Library()


@register.simple_tag
def plotly_js_url() -> str:
    """URL of plotly.js, the basic bundle the hub serves as a static file (see dashboard/vendor.py)."""
    return vendor.plotly_js_url()


@register.filter
def pretty_json(value) -> str:
    return jsonio.dumps(value, indent=2)


# The record pages, by the field that names a record in tools, events and import rows.
RECORD_PAGES = {"sales_id": "dashboard:salesorder", "customer_account": "dashboard:customer",
                "item_id": "dashboard:item"}


@register.simple_tag
def record_link(field: str, value, code: str | list[str] = "") -> str:
    """`value` as a link to its record page when `field` names a customer, item or sales order
    (`{% record_link "customer_account" row.customer_account %}`); else, or for a value no key
    can be, or when `code` (an import row's error code, or its list of codes) says a record does
    not exist, the value as text. Escaped either way."""
    text = "" if value is None else str(value)
    page = RECORD_PAGES.get(str(field))
    codes = [code] if isinstance(code, str) else list(code or [])
    if page is None or not KEY_RE.match(text) or any(str(c).endswith("_NOT_FOUND") for c in codes):
        return conditional_escape(text)
    return format_html('<a href="{}" data-record="{}">{}</a>', reverse(page, args=[text]), field, text)


@register.simple_tag
def record_links(data) -> str:
    """Links to the records an event's data names (its sales_id, customer_account, item_id), for
    the rows of events and deliveries: `{% record_links event.data %}`."""
    if not isinstance(data, dict):
        return ""
    named = [(record_link(field, data[field]),) for field in RECORD_PAGES if isinstance(data.get(field), str)]
    if not named:
        return ""
    return format_html('<span class="record-links">{}</span>', format_html_join(" ", "<code>{}</code>", named))


@register.filter
def at(sequence, index: int):
    """sequence[index], or "" past its end: `{{ preview.fields|at:forloop.counter0 }}`."""
    try:
        return sequence[int(index)]
    except (IndexError, TypeError, ValueError, KeyError):
        return ""


@register.simple_tag
def subject_link(event_type: str, subject) -> str:
    """A delivery's subject (core/webhooks/subjects.py: the sales_id, customer_account, item_id …
    its event is about) linked to the record's page, or "" where the record has no page."""
    field = subjects.KINDS.get(str(event_type).split(".", 1)[0], ("", ""))[0]
    if field not in RECORD_PAGES or not subject:
        return ""
    return record_link(field, subject)
