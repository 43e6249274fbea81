"""Template helpers of the dashboard: `{% load hub %}`."""

from __future__ import annotations

from django import template

from core.tools import jsonio
from dashboard import vendor

register = template.Library()


@register.simple_tag
def plotly_js_url() -> str:
    """URL of the bundled plotly.min.js, served by the hub (see dashboard/vendor.py)."""
    return vendor.plotly_js_url()


@register.filter
def pretty_json(value) -> str:
    return jsonio.dumps(value, indent=2)
