"""CSV and XLSX exports: headers, figures, number formats, and no formulas from names."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from core.roi.export import filename, to_csv, to_xlsx
from core.roi.services import roi_metrics
from tests.roi.world import at, audit

FORMULA_USER = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture
def result(world):
    audit("ax_create_salesorder", world.bob, created=at("2025-12-01"), duration_ms=30_000)
    audit("ax_post_payment", world.mallory, created=at("2025-12-02"), duration_ms=0)  # department +cmd
    audit("-2+3", world.carol, created=at("2025-12-03"), success=False)  # a made-up tool name
    audit("@SUM(A1)", None, created=at("2025-12-03"), department="\tTAB", username="\rCR")
    return roi_metrics("2025-12-01", "2025-12-06", "day")


def rows_of(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def test_csv_of_one_grouping_ends_with_a_total_row(result):
    rows = rows_of(to_csv(result, "tool"))
    assert rows[0] == ["tool", "baseline_sec", "operations", "successful", "avg_time_saved_sec",
                       "total_time_saved_hours", "cost_saved_eur"]
    assert rows[1] == ["ax_create_salesorder", "300", "1", "1", "270.0", "0.08", "5.29"]
    tools = [r[0] for r in rows[1:-1]]
    assert "'-2+3" in tools and "'@SUM(A1)" in tools and "-2+3" not in tools
    total = result.total
    assert rows[-1] == ["Total", "", str(total.operations), str(total.successful), str(total.avg_time_saved_sec),
                        str(total.time_saved_hours), str(total.cost_saved)]
    days = rows_of(to_csv(result, "day"))
    assert days[0][0] == "day" and [r[0] for r in days[1:-1]] == [f"2025-12-0{d}" for d in range(1, 7)]
    assert days[-1][:2] == ["Total", str(total.operations)]
    weeks = rows_of(to_csv(roi_metrics("2025-12-01", "2025-12-06", "week"), "week"))
    assert weeks[-1][:3] == ["Total", "", str(total.operations)]


def test_csv_for_german_excel_uses_semicolons_and_decimal_commas(result):
    data = to_csv(result, "tool", "excel-de")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["tool", "baseline_sec", "operations"]
    assert rows[1] == ["ax_create_salesorder", "300", "1", "1", "270,0", "0,08", "5,29"]
    assert rows[-1][0] == "Total" and rows[-1][-1] == str(result.total.cost_saved).replace(".", ",")
    assert data.split(b"\r\n")[1] == b"ax_create_salesorder;300;1;1;270,0;0,08;5,29"
    tools = [r[0] for r in rows[1:]]
    assert "'-2+3" in tools and "'@SUM(A1)" in tools  # still neutralised
    everything = list(csv.reader(io.StringIO(to_csv(result, None, "excel-de").decode("utf-8-sig")), delimiter=";"))
    assert everything[1][:3] == ["2025-12-01", "2025-12-06", "total"]


def test_csv_neutralises_users_and_departments(result):
    users = [r[0] for r in rows_of(to_csv(result, "user"))[1:]]
    assert "'" + FORMULA_USER in users and "'\rCR" in users
    departments = rows_of(to_csv(result, "department"))[1:]
    assert ["'+cmd", "'=1+2"] in [r[:2] for r in departments]
    assert "'\tTAB" in [r[0] for r in departments]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in departments for cell in row)


def test_csv_of_everything_starts_with_the_total(result):
    rows = rows_of(to_csv(result))
    assert rows[0] == ["date_from", "date_to", "grouping", "key", "name", "operations", "successful",
                       "avg_time_saved_sec", "total_time_saved_hours", "cost_saved_eur"]
    assert rows[1][:5] == ["2025-12-01", "2025-12-06", "total", "", ""]
    assert rows[1][5:] == [str(result.total.operations), str(result.total.successful),
                           str(result.total.avg_time_saved_sec), str(result.total.time_saved_hours),
                           str(result.total.cost_saved)]
    assert {r[2] for r in rows[1:]} == {"total", "tool", "user", "department", "day"}
    assert ["department", "'+cmd", "'=1+2"] in [r[2:5] for r in rows]


def test_xlsx_has_a_sheet_per_grouping_with_header_and_formats(result):
    book = load_workbook(io.BytesIO(to_xlsx(result)))
    assert book.sheetnames == ["Summary", "By tool", "By user", "By department", "By day"]
    summary = {row[0].value: row[1] for row in book["Summary"].iter_rows(min_row=2)}
    assert summary["total_cost_saved_eur"].value == pytest.approx(float(result.total.cost_saved))
    assert summary["total_cost_saved_eur"].number_format == "#,##0.00"
    assert summary["date_from"].value == datetime(2025, 12, 1)
    assert summary["excluded_operations_migration"].value == 0
    tools = book["By tool"]
    assert [c.value for c in tools[1]] == ["tool", "baseline_sec", "operations", "successful",
                                           "avg_time_saved_sec", "total_time_saved_hours", "cost_saved_eur"]
    assert tools[1][0].font.b and tools.freeze_panes == "A2"
    first = tools[2]
    assert [c.value for c in first] == ["ax_create_salesorder", 300, 1, 1, 270, 0.08, 5.29]
    assert [c.number_format for c in first[2:]] == ["#,##0", "#,##0", "#,##0.0", "#,##0.00", "#,##0.00"]
    days = book["By day"]
    assert days["A2"].value == datetime(2025, 12, 1) and days["A2"].number_format == "yyyy-mm-dd"
    assert days.max_row == 7


def test_xlsx_stores_formula_like_names_as_text(result):
    data = to_xlsx(result)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/worksheets/")]
    assert not any("<f>" in sheet or "<f " in sheet for sheet in sheets)
    book = load_workbook(io.BytesIO(data))
    cells = {c.value: c for ws in book for row in ws.iter_rows() for c in row if isinstance(c.value, str)}
    for text in (FORMULA_USER, "+cmd", "=1+2", "-2+3", "@SUM(A1)", "\tTAB"):
        assert cells[text].data_type == "s" and cells[text].quotePrefix, text
    assert not cells["ax_create_salesorder"].quotePrefix


def test_filename():
    from core.roi.figures import Figures, Metrics

    metrics = Metrics(date(2025, 12, 1), date(2025, 12, 6), "tool", "EUR", Decimal("50.00"), Figures(), {})
    assert filename(metrics, "xlsx") == "roi_2025-12-01_2025-12-06.xlsx"
    assert filename(metrics, "csv", "tool") == "roi_2025-12-01_2025-12-06_by_tool.csv"
