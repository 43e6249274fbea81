"""ax_get_roi_metrics: ROI figures of a date range (story 7.6); ax_set_roi_baseline: a tool's manual time."""

from __future__ import annotations

from typing import Any

from core.accounts.roles import MCP_ADMIN
from core.roi import services
from core.roi.figures import GROUPINGS, PERIOD_GROUPINGS
from core.roi.models import MAX_BASELINE_SECONDS
from core.tools.pipeline import CallContext
from core.tools.registry import obj, register
from core.tools.schemas import BOOLEAN, COUNT, DAY, STRING, TIMESTAMP, date_input, nullable, record, text

# services.parse_date: YYYY-MM-DD of a real day, years MIN_YEAR-MAX_YEAR (a test holds the two together).
DATE = date_input("YYYY-MM-DD (UTC day), inclusive; years 1970-2999", years="19[7-9][0-9]|2[0-9]{3}")

# core/roi/figures.py: amounts are JSON numbers; the cost keys carry ROI_CURRENCY in lower case
# (cost_saved_eur), so they are described by pattern.
HOURS = {"type": "number", "minimum": 0, "description": "hours, two decimals"}
SECONDS = {"type": "number", "minimum": 0, "description": "seconds, one decimal"}
MONEY_SAVED = {"type": "number", "minimum": 0, "description": "in ROI_CURRENCY, two decimals"}


def _figures(head: dict, cost_key: str) -> dict:
    return {**record({**head, "operations": COUNT, "successful": COUNT, "avg_time_saved_sec": SECONDS,
                      "total_time_saved_hours": HOURS}),
            "patternProperties": {cost_key: MONEY_SAVED}, "minProperties": len(head) + 5}


ROW_HEADS = {
    "tool": {"tool": STRING, "baseline_sec": {**nullable(COUNT), "description": "the tool's current baseline"}},
    "user": {"user": nullable(STRING)},
    "department": {"department": nullable(STRING), "name": nullable(STRING)},
    "day": {"day": STRING},
    "week": {"week": STRING, "week_start": nullable(DAY)},
    "month": {"month": STRING},
}
METRICS = {
    **record({
        "date_from": DAY, "date_to": DAY, "group_by": {"enum": list(GROUPINGS)},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "total_operations": COUNT, "successful_operations": COUNT, "total_time_saved_hours": HOURS,
        "avg_time_saved_sec": SECONDS,
        **{f"by_{g}": {"type": "array", "items": _figures(head, "^cost_saved_[a-z]{3}$")}
           for g, head in ROW_HEADS.items()},
    }, optional=tuple(f"by_{g}" for g in PERIOD_GROUPINGS)),
    "patternProperties": {"^total_cost_saved_[a-z]{3}$": MONEY_SAVED},
    "minProperties": 12,  # the 11 always there and total_cost_saved_<currency>
    "description": "by_tool, by_user and by_department always; by_day, by_week or by_month when group_by asks. "
                   "total_cost_saved_<currency> and each row's cost_saved_<currency> name ROI_CURRENCY.",
}


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
    output=METRICS,
)
def get_roi_metrics(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return services.roi_metrics(args["date_from"], args["date_to"], args.get("group_by", "tool")).as_dict()


@register(
    "ax_set_roi_baseline", role=MCP_ADMIN,
    description="Set how many seconds a person needs by hand for one operation of a tool (its ROI baseline, keyed "
                "by the tool name as audited, e.g. ax_create_salesorder or import.customers): creates it or changes "
                "it. The tool's savings are recomputed for every period.",
    schema=obj({"tool": text(100, required=True, description="tool name as audited"),
                "seconds": {"type": "integer", "minimum": 0, "maximum": MAX_BASELINE_SECONDS},
                "note": text(200, description="what the manual work consists of")}, ["tool", "seconds"]),
    output=record({"tool": STRING, "seconds": COUNT, "note": STRING, "created": BOOLEAN, "updated": TIMESTAMP}),
)
def set_roi_baseline(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    baseline, created = services.set_baseline(args["tool"], args["seconds"], args.get("note"))
    return {"tool": baseline.tool, "seconds": baseline.seconds, "note": baseline.note, "created": created,
            "updated": baseline.updated.isoformat()}
