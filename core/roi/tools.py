"""ax_get_roi_metrics: ROI figures of a date range (story 7.6); ax_set_roi_baseline and
ax_list_roi_baselines: the history of a tool's manual time."""

from __future__ import annotations

from typing import Any

from core.accounts.roles import MCP_ADMIN
from core.roi import history, services
from core.roi.figures import GROUPINGS, PERIOD_GROUPINGS
from core.roi.models import MAX_BASELINE_SECONDS, Baseline
from core.tools.pipeline import CallContext
from core.tools.registry import obj, register
from core.tools.schemas import BOOLEAN, COUNT, DAY, STRING, TIMESTAMP, date_input, listing, nullable, record, text

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
    "tool": {"tool": STRING, "baseline_sec": {**nullable(COUNT), "description": "the tool's baseline in force on "
                                                                                "date_to; null: none"}},
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
        "excluded_operations": {**record({"migration": COUNT}),
                                "description": "operations of the range not counted, by reason: migration = "
                                               "records of one-off migrations (imports with roi false)"},
        **{f"by_{g}": {"type": "array", "items": _figures(head, "^cost_saved_[a-z]{3}$")}
           for g, head in ROW_HEADS.items()},
    }, optional=tuple(f"by_{g}" for g in PERIOD_GROUPINGS)),
    "patternProperties": {"^total_cost_saved_[a-z]{3}$": MONEY_SAVED},
    "minProperties": 13,  # the 12 always there and total_cost_saved_<currency>
    "description": "by_tool, by_user and by_department always; by_day, by_week or by_month when group_by asks. "
                   "total_cost_saved_<currency> and each row's cost_saved_<currency> name ROI_CURRENCY.",
}


@register(
    "ax_get_roi_metrics", role=MCP_ADMIN,
    description="Operations, hours and money saved against manual baselines from date_from to date_to "
                "(inclusive, at most three years): totals, by_tool, by_user, by_department, and by_day, "
                "by_week or by_month when group_by asks for it. Each operation is priced with the baseline and "
                "hourly rate in force on its day. Failed operations count but save nothing; replayed calls and "
                "batch/import envelopes are not counted; records of one-off migrations are not counted either, "
                "and excluded_operations says how many there were.",
    schema=obj({
        "date_from": DATE,
        "date_to": DATE,
        "group_by": {"enum": list(GROUPINGS), "default": "tool"},
    }, ["date_from", "date_to"]),
    output=METRICS,
)
def get_roi_metrics(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return services.roi_metrics(args["date_from"], args["date_to"], args.get("group_by", "tool")).as_dict()


BASELINE_SECONDS = {"type": "integer", "minimum": 0, "maximum": MAX_BASELINE_SECONDS}
EFFECTIVE_FROM = date_input("first UTC day priced with this value, YYYY-MM-DD (default: today); it stays in force "
                            "until the tool's next value", years="19[7-9][0-9]|2[0-9]{3}")
ENTRY = record({"effective_from": DAY, "baseline_sec": COUNT, "note": STRING, "updated": TIMESTAMP})
# Exactly one of baseline_sec and its older name seconds (allOf keeps the message to this rule alone).
ONE_SECONDS_FIELD = {"oneOf": [{"required": ["baseline_sec"]}, {"required": ["seconds"]}],
                     "x-message": "give the seconds as baseline_sec (or its older name seconds), "
                                  "exactly one of the two"}


def _entry(baseline: Baseline) -> dict[str, Any]:
    return {"effective_from": baseline.effective_from.isoformat(), "baseline_sec": baseline.seconds,
            "note": baseline.note, "updated": baseline.updated.isoformat()}


@register(
    "ax_set_roi_baseline", role=MCP_ADMIN,
    description="Set how many seconds a person needs by hand for one operation of a tool (its ROI baseline, keyed "
                "by the tool name as audited, e.g. ax_create_salesorder or import.customers), from effective_from "
                "(default today, UTC) until the tool's next value. Operations are priced with the baseline in "
                "force on their day, so the tool's savings are recomputed from effective_from on and earlier days "
                "keep theirs. A value for a day that already has one changes it. `seconds` is the older name "
                "of baseline_sec: give exactly one of the two.",
    schema=obj({"tool": text(100, required=True, description="tool name as audited"),
                "baseline_sec": BASELINE_SECONDS,
                "seconds": {**BASELINE_SECONDS, "description": "the same as baseline_sec (older name)"},
                "effective_from": EFFECTIVE_FROM,
                "note": text(200, description="what the manual work consists of")}, ["tool"])
    | {"allOf": [ONE_SECONDS_FIELD]},
    output=record({"tool": STRING, "baseline_sec": COUNT, "seconds": COUNT, "effective_from": DAY, "note": STRING,
                   "created": BOOLEAN, "updated": TIMESTAMP}),
)
def set_roi_baseline(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    seconds = args["baseline_sec"] if "baseline_sec" in args else args["seconds"]  # the schema allows one
    day = services.parse_date(args["effective_from"], "effective_from") if "effective_from" in args else None
    baseline, created = history.set_baseline(args["tool"], seconds, args.get("note"), day)
    return {"tool": baseline.tool, "baseline_sec": baseline.seconds, "seconds": baseline.seconds,
            **{k: v for k, v in _entry(baseline).items() if k != "baseline_sec"}, "created": created}


@register(
    "ax_list_roi_baselines", role=MCP_ADMIN,
    description="The ROI baselines of every tool (or of `tool`), each with its history oldest first: the seconds "
                "a person needs by hand from effective_from until the next entry. baseline_sec and effective_from "
                "at the top are the entry in force today (null: none yet).",
    schema=obj({"tool": text(100, description="only this tool (the name as audited)")}),
    output=listing("baselines", record({
        "tool": STRING, "baseline_sec": nullable(COUNT), "effective_from": nullable(DAY),
        "history": {"type": "array", "items": ENTRY}})),
)
def list_roi_baselines(args: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    return {"baselines": [
        {"tool": h.tool, "baseline_sec": h.in_force.seconds if h.in_force else None,
         "effective_from": h.in_force.effective_from.isoformat() if h.in_force else None,
         "history": [_entry(b) for b in h.entries]}
        for h in history.baseline_histories(args.get("tool"))]}
