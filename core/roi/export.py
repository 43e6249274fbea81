"""CSV and XLSX exports of ROI metrics, safe to open in a spreadsheet.

Column names are the keys of ax_get_roi_metrics. CSV comes in the reader's format (CSV_FORMATS:
comma and decimal point, or semicolon and decimal comma as German Excel expects), with a
total row. Text that a spreadsheet would read as a
formula (starting with =, +, -, @, tab or carriage return: a user named =HYPERLINK(...), a
department +cmd, a tool name a caller made up) is neutralised: in CSV it gets a leading
apostrophe; in XLSX it is stored as a string cell with Excel's quote prefix, which is what
Excel itself stores when a person types the apostrophe, so it shows unchanged and stays text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from core.roi.figures import Metrics, Row
from core.spreadsheet import FORMULA_STARTS, neutralise

SHEET_TITLES = {"tool": "By tool", "user": "By user", "department": "By department", "day": "By day",
                "week": "By week", "month": "By month"}
INT, DEC1, DEC2, DAY, MONTH = "#,##0", "#,##0.0", "#,##0.00", "yyyy-mm-dd", "yyyy-mm"


@dataclass(frozen=True)
class Column:
    key: str
    number_format: str | None = None
    width: int = 14


def _key_columns(grouping: str) -> list[Column]:
    return {
        "tool": [Column("tool", width=28), Column("baseline_sec", INT, 13)],
        "user": [Column("user", width=24)],
        "department": [Column("department", width=14), Column("name", width=24)],
        "day": [Column("day", DAY, 12)],
        "week": [Column("week", width=10), Column("week_start", DAY, 12)],
        "month": [Column("month", MONTH, 10)],
    }[grouping]


def _figure_columns(metrics: Metrics) -> list[Column]:
    return [Column("operations", INT, 12), Column("successful", INT, 12), Column("avg_time_saved_sec", DEC1, 19),
            Column("total_time_saved_hours", DEC2, 23), Column(metrics.cost_key, DEC2, 17)]


@dataclass(frozen=True)
class CsvFormat:
    """How a spreadsheet of one locale reads CSV: its field separator and decimal mark."""

    label: str
    description: str
    delimiter: str
    decimal: str


CSV_FORMATS = {
    "standard": CsvFormat("Standard", "comma-separated, decimal point", ",", "."),
    "excel-de": CsvFormat("German Excel", "semicolon-separated, decimal comma", ";", ","),
}
DEFAULT_CSV_FORMAT = "standard"


def filename(metrics: Metrics, extension: str, grouping: str | None = None) -> str:
    """e.g. roi_2025-12-01_2025-12-06.xlsx, or roi_2025-12-01_2025-12-06_by_tool.csv"""
    suffix = f"_by_{grouping}" if grouping else ""
    return f"roi_{metrics.date_from.isoformat()}_{metrics.date_to.isoformat()}{suffix}.{extension}"


# --- CSV


def _csv_cell(value: Any, style: CsvFormat) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, Decimal):
        return str(value).replace(".", style.decimal)
    if isinstance(value, date):
        return value.isoformat()
    return value


class _Line:
    def write(self, text: str) -> str:
        return text


def csv_lines(header: list[str], rows: Iterable[list[Any]], csv_format: str = DEFAULT_CSV_FORMAT) -> Iterator[str]:
    """CSV text line by line in the reader's format (a key of CSV_FORMATS), for a download that
    streams: text neutralised, decimals with the format's mark. The first line starts with a
    byte-order mark, so that Excel opens the file as UTF-8 (names like Müller stay intact)."""
    style = CSV_FORMATS[csv_format]
    writer = csv.writer(_Line(), delimiter=style.delimiter)
    yield "\ufeff" + writer.writerow(header)
    for row in rows:
        yield writer.writerow([_csv_cell(v, style) for v in row])


def _csv_bytes(header: list[str], rows: list[list[Any]], csv_format: str) -> bytes:
    return "".join(csv_lines(header, rows, csv_format)).encode("utf-8")


def to_csv(metrics: Metrics, grouping: str | None = None, csv_format: str = DEFAULT_CSV_FORMAT) -> bytes:
    """One grouping as a table (its key columns, then the figures) ending with a total row, or
    with grouping=None every grouping in one long table: a total row first, then one row per
    entry. csv_format: a key of CSV_FORMATS."""
    figure_keys = [c.key for c in _figure_columns(metrics)]
    total = metrics.total.as_dict(metrics.currency)
    if grouping is not None:
        key_columns = [c.key for c in _key_columns(grouping)]
        entries = [row.as_dict(grouping, metrics.currency) for row in metrics.groups[grouping]]
        rows = [[entry[k] for k in key_columns + figure_keys] for entry in entries]
        rows.append(["Total", *([None] * (len(key_columns) - 1)), *(total[k] for k in figure_keys)])
        return _csv_bytes(key_columns + figure_keys, rows, csv_format)
    period = [metrics.date_from.isoformat(), metrics.date_to.isoformat()]
    rows = [[*period, "total", "", None, *(total[k] for k in figure_keys)]]
    for name, entries in metrics.groups.items():
        for row in entries:
            entry = row.as_dict(name, metrics.currency)
            rows.append([*period, name, entry[name], entry.get("name"), *(entry[k] for k in figure_keys)])
    return _csv_bytes(["date_from", "date_to", "grouping", "key", "name", *figure_keys], rows, csv_format)


# --- XLSX


def _put(ws, row: int, column: int, value: Any, number_format: str | None = None) -> None:
    cell = ws.cell(row=row, column=column)
    if isinstance(value, str):
        cell.value = value
        cell.data_type = "s"  # never a formula, whatever the text starts with
        if value.startswith(FORMULA_STARTS):
            cell.quotePrefix = True
        return
    cell.value = value
    if number_format and value is not None:
        cell.number_format = number_format


def _header(ws, keys: list[str]) -> None:
    bold = Font(bold=True)
    for n, key in enumerate(keys, start=1):
        _put(ws, 1, n, key)
        ws.cell(row=1, column=n).font = bold
    ws.freeze_panes = "A2"


def _cell_value(row: Row, key: str, entry: dict[str, Any]) -> Any:
    # Periods as real dates (shown as yyyy-mm-dd or yyyy-mm), so they sort and filter as dates.
    if key in ("day", "month", "week_start"):
        return row.start
    return entry[key]


def _summary(ws, metrics: Metrics) -> None:
    ws.title = "Summary"
    total = metrics.total
    lines: list[tuple[str, Any, str | None]] = [
        ("date_from", metrics.date_from, DAY),
        ("date_to", metrics.date_to, DAY),
        ("group_by", metrics.group_by, None),
        ("currency", metrics.currency, None),
        ("total_operations", total.operations, INT),
        ("successful_operations", total.successful, INT),
        ("total_time_saved_hours", total.time_saved_hours, DEC2),
        (f"total_{metrics.cost_key}", total.cost_saved, DEC2),
        ("avg_time_saved_sec", total.avg_time_saved_sec, DEC1),
        *((f"excluded_operations_{reason}", count, INT) for reason, count in metrics.excluded.items()),
        ("default_hourly_rate", metrics.default_hourly_rate, DEC2),
        ("time_saved", "max(0, baseline - duration) per successful operation; failed operations save nothing", None),
        ("cost_saved", "time saved in hours x hourly rate (user's, else department's, else default)", None),
        ("in_force", "each operation is priced with the baseline and the rates in force on its day (UTC)", None),
        ("excluded", "records of one-off migrations (imports marked so) are not counted", None),
    ]
    _header(ws, ["metric", "value"])
    for n, (label, value, number_format) in enumerate(lines, start=2):
        _put(ws, n, 1, label)
        _put(ws, n, 2, value, number_format)
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 20


def to_xlsx(metrics: Metrics) -> bytes:
    """A workbook: Summary, then one sheet per grouping of the result (By tool, By user,
    By department, and By day/week/month when asked), each with a header row."""
    wb = Workbook()
    _summary(wb.active, metrics)
    for grouping, rows in metrics.groups.items():
        ws = wb.create_sheet(SHEET_TITLES[grouping])
        columns = _key_columns(grouping) + _figure_columns(metrics)
        _header(ws, [c.key for c in columns])
        for r, row in enumerate(rows, start=2):
            entry = row.as_dict(grouping, metrics.currency)
            for n, column in enumerate(columns, start=1):
                _put(ws, r, n, _cell_value(row, column.key, entry), column.number_format)
        for n, column in enumerate(columns, start=1):
            ws.column_dimensions[get_column_letter(n)].width = column.width
        if rows:
            ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
