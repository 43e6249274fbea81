"""ax_get_roi_metrics: ROI figures of a date range (story 7.6)."""

from __future__ import annotations

from typing import Any

from core.accounts.roles import MCP_ADMIN
from core.roi import services
from core.roi.figures import GROUPINGS
from core.tools.pipeline import CallContext
from core.tools.registry import obj, register

DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "YYYY-MM-DD (UTC day), inclusive"}


@register(
    "ax_get_roi_metrics", role=MCP_ADMIN,
    description="Operations, hours and money saved against manual baselines from date_from to date_to "
                "(inclusive, at most three years): totals, by_tool, by_user, by_department, and by_day, "
                "by_week or by_month when group_by asks for it. Failed operations count but save nothing; "
                "replayed calls and batch/import envelopes are not counted.",
    schema=obj({
        "date_from": DATE,
        "date_to": DATE,
        "group_by": {"enum": list(GROUPINGS), "default": "tool"},
    }, ["date_from", "date_to"]),
)
def get_roi_metrics(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return services.roi_metrics(args["date_from"], args["date_to"], args.get("group_by", "tool")).as_dict()
