"""The import file readers on their own: what (line, values) a person's file gives."""

from __future__ import annotations

import csv
import zipfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from core.imports import xlsx, xlsx_stream
from core.imports.models import Dialect
from core.imports.readers import FormulaWithoutValue, ImportFailure, clean_header, open_rows, sniff_csv

# --- CSV ---------------------------------------------------------------------------------------


def read_csv(tmp_path: Path, content: str | bytes, *, encoding: str = "utf-8", dialect: Dialect | None = None,
             raw_header: bool = False):
    path = tmp_path / "file.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    with open_rows(path, "csv", dialect or sniff_csv(path), raw_header=raw_header) as (header, rows):
        return header, counted(rows)


def counted(rows) -> list:
    """The rows, after checking that the counting pass (the job's total) counts exactly them."""
    listed = list(rows)
    assert rows.count() == len(listed)
    return listed


def csv_module_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """What the csv module reads, as the reader is meant to give it: the line where each record
    starts, blank rows skipped, short rows padded to the header's width."""
    dialect = sniff_csv(path)
    with path.open(encoding=dialect.encoding, newline="") as f:
        reader = csv.reader(f, delimiter=dialect.delimiter)
        header = next(reader)
        rows, last = [], reader.line_num
        for values in reader:
            line, last = last + 1, reader.line_num
            if any(v.strip() for v in values):
                rows.append((line, values + [""] * (len(header) - len(values))))
    return clean_header(header), rows


def test_line_numbers_count_blank_lines_and_line_ends_of_every_kind(tmp_path):
    header, rows = read_csv(tmp_path, "a,b\r\n1,2\r\n\r\n3,4\n\n  \n5,6\r7,8")
    assert header == ["a", "b"]
    assert rows == [(2, ["1", "2"]), (4, ["3", "4"]), (7, ["5", "6"]), (8, ["7", "8"])]


def test_a_quoted_cell_over_several_lines_counts_them(tmp_path):
    _, rows = read_csv(tmp_path, 'a,b\n1,"x\ny"\n2,"p\r\nq\rr"\n3,z\n')
    assert rows == [(2, ["1", "x\ny"]), (4, ["2", "p\r\nq\rr"]), (7, ["3", "z"])]


def test_a_bom_and_semicolons_give_the_raw_header(tmp_path):
    header, rows = read_csv(tmp_path, "\ufeffKunden Nr;Betrag\n1;1.234,56\n", raw_header=True)
    assert header == ["Kunden Nr", "Betrag"]
    assert rows == [(2, ["1", "1.234,56"])]


def test_the_header_is_cleaned_unless_asked_raw(tmp_path):
    assert read_csv(tmp_path, " Customer  Account ,NAME\n1,x\n")[0] == ["customer_account", "name"]
    assert read_csv(tmp_path, " Customer  Account ,NAME\n1,x\n", raw_header=True)[0] == ["Customer  Account",
                                                                                          "NAME"]
    assert clean_header(["\ufeffA b", None, 2024]) == ["a_b", "", "2024"]


def test_tab_delimited(tmp_path):
    assert read_csv(tmp_path, "a\tb\n1\t2,5\n") == (["a", "b"], [(2, ["1", "2,5"])])


def test_cp1252_text(tmp_path):
    header, rows = read_csv(tmp_path, "name,city\nMüller,Köln €\n", encoding="cp1252")
    assert rows == [(2, ["Müller", "Köln €"])]


def test_utf16_text(tmp_path):
    assert read_csv(tmp_path, "name,city\nMüller,Köln\n", encoding="utf-16")[1] == [(2, ["Müller", "Köln"])]


def test_rows_with_more_cells_keep_them_and_shorter_rows_are_padded(tmp_path):
    _, rows = read_csv(tmp_path, "a,b,c\n1,2,3,4\n5\n6,\"x\ny\",7,8,9\n10,11,12\n")
    assert rows == [(2, ["1", "2", "3", "4"]), (3, ["5", "", ""]), (4, ["6", "x\ny", "7", "8", "9"]),
                    (6, ["10", "11", "12"])]


def test_an_unterminated_quote_fails_the_file_at_its_line(tmp_path):
    with pytest.raises(ImportFailure) as failure:
        read_csv(tmp_path, 'a,b\n1,2\n\n3,"never closed\n4,5\n')
    assert failure.value.code == "INVALID_FILE"
    assert failure.value.message.startswith("line 4:")


def test_an_unterminated_quote_in_the_header_fails_at_line_1(tmp_path):
    with pytest.raises(ImportFailure) as failure:
        read_csv(tmp_path, '"a,b\n1,2\n')
    assert (failure.value.code, failure.value.message[:7]) == ("INVALID_FILE", "line 1:")


def test_bytes_that_do_not_decode_fail_the_file_at_their_line(tmp_path):
    with pytest.raises(ImportFailure) as failure:
        read_csv(tmp_path, b"a,b\n1,2\n3,\xff\xfe\n", dialect=Dialect(encoding="utf-8"))
    assert failure.value.code == "INVALID_FILE"
    assert failure.value.message.startswith("line 3:")


def test_a_file_without_a_header_is_empty(tmp_path):
    with pytest.raises(ImportFailure) as failure:
        read_csv(tmp_path, b"\n\n", dialect=Dialect())
    assert failure.value.code == "EMPTY_FILE"


def test_a_header_only_file_has_no_rows(tmp_path):
    assert read_csv(tmp_path, "a,b\n") == (["a", "b"], [])


def _big(rows: int, *, extra_at: int | None = None) -> str:
    lines = ["account,name,note"]
    for n in range(1, rows + 1):
        if n % 1000 == 0:
            lines.append("")
        note = f'"two\nlines {n}"' if n % 997 == 0 else ('"cr\r\nlf"' if n % 1499 == 0 else f"n{n}")
        lines.append(f"C{n},Name {n},{note}" + (",extra" if n == extra_at else ""))
    return "\r\n".join(lines) + "\r\n"


TRICKY = {
    "plain": "a,b,c\n1,2,3\n",
    "blank and whitespace lines": "a,b\n\n1,2\n   \n,\n \t, \n3,4\n",
    "spaces before a value": "a,b,c\n , x,\n,  ,y\n , ,\n  ,,\n",
    "crlf": "a,b\r\n1,2\r\n\r\n3,4\r\n",
    "cr only": "a,b\r1,2\r\r3,4\r",
    "mixed line ends": "a,b\n1,2\r\n3,4\r5,6\n",
    "multi-line cells": 'a,b\n1,"x\ny"\n2,"p\r\nq"\n3,"r\rs"\n4,"\n\n"\n',
    "quotes inside": 'a,b\n"x""y",2\n"abc"def,3\nb"c,4\n"",""\n',
    "short and long rows": "a,b,c\n1\n1,2\n1,2,3,4\n,,\n1,2,\n",
    "no newline at the end": "a,b\n1,2",
    "nul characters": "a,b\nx\x00y,2\n",
    "semicolon, decimal comma, bom": "\ufeffa;b\n1;2,5\n3;\"4;5\"\n",
    "tab": "a\tb\n1\t2\n\t\n",
    "unicode": "名前,Straße\n東京商事,Ångström\n",
    "chunks": _big(12_345),
    "a long row in a later chunk": _big(12_345, extra_at=7_777),
    "a long row in the first chunk": _big(6_000, extra_at=3),
}


@pytest.mark.parametrize("name", TRICKY)
def test_the_csv_reader_reads_as_the_csv_module_does(tmp_path, name):
    path = tmp_path / "file.csv"
    path.write_bytes(TRICKY[name].encode("utf-8"))
    with open_rows(path, "csv", sniff_csv(path)) as (header, rows):
        assert (header, counted(rows)) == csv_module_rows(path)


def test_the_csv_reader_reads_cp1252_as_the_csv_module_does(tmp_path):
    path = tmp_path / "file.csv"
    path.write_bytes("name;ort\nMüller;Köln €\n\nSöhne;\"Zürich\r\nHof\"\n".encode("cp1252"))
    assert sniff_csv(path).encoding == "cp1252"
    with open_rows(path, "csv", sniff_csv(path)) as (header, rows):
        assert (header, counted(rows)) == csv_module_rows(path)


def test_an_unterminated_quote_in_a_later_chunk_fails_at_its_line(tmp_path):
    content = _big(8_000) + 'X,"never closed\r\nmore\r\n'
    with pytest.raises(ImportFailure) as failure:
        read_csv(tmp_path, content)
    assert failure.value.message.startswith(f"line {content.count(chr(10)) - 1}:")


def test_an_oversized_cell_fails_the_file_at_its_line(tmp_path):
    with pytest.raises(ImportFailure) as failure:
        read_csv(tmp_path, "a,b\n1,2\n\n3," + "x" * 200_000 + "\n")
    assert (failure.value.code, failure.value.message[:7]) == ("INVALID_FILE", "line 4:")


# --- XLSX --------------------------------------------------------------------------------------


def xlsx_file(tmp_path: Path, sheets: dict[str, list[list]]) -> Path:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    path = tmp_path / "file.xlsx"
    workbook.save(path)
    return path


def xml_xlsx(tmp_path: Path, sheet_data: str, *, prefix: str = "", strings: str = "", formats: tuple = (),
             date1904: bool = False) -> Path:
    """A workbook written cell by cell, as programs other than Excel write them: `strings` the
    shared strings' <si> elements, `formats` the number format of each cell style (an id, or a
    format code of its own)."""
    p = f"{prefix}:" if prefix else ""
    xmlns = f"xmlns:{prefix}" if prefix else "xmlns"
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    path = tmp_path / "written.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/data.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'))
        archive.writestr("_rels/.rels", f'<Relationships xmlns="{package}"><Relationship Id="rId1" '
                                        f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        archive.writestr("xl/workbook.xml", f'<workbook xmlns="{main}" xmlns:r="{rel}">'
                                            + ('<workbookPr date1904="1"/>' if date1904 else "") +
                                            '<sheets><sheet name="Data" sheetId="1" r:id="rId7"/></sheets></workbook>')
        if strings:
            archive.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}">{strings}</sst>')
        if formats:
            custom = {f: 164 + i for i, f in enumerate(f for f in formats if isinstance(f, str))}
            codes = "".join(f'<numFmt numFmtId="{i}" formatCode="{escape(f, {chr(34): "&quot;"})}"/>'
                            for f, i in custom.items())
            xfs = "".join(f'<xf numFmtId="{custom.get(f, f)}"/>' for f in formats)
            archive.writestr("xl/styles.xml", f'<styleSheet xmlns="{main}"><numFmts>{codes}</numFmts>'
                                              f'<cellXfs>{xfs}</cellXfs></styleSheet>')
        archive.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{package}"><Relationship Id="rId7" '
                                                       f'Type="{rel}/worksheet" Target="/xl/worksheets/data.xml"/>'
                                                       f'</Relationships>')
        archive.writestr("xl/worksheets/data.xml", f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet '
                                                   f'{xmlns}="{main}"><{p}sheetData>{sheet_data}</{p}sheetData>'
                                                   f'</{p}worksheet>')
    return path


def read_xlsx(path: Path, sheet: str = "", *, raw_header: bool = False):
    with open_rows(path, "xlsx", None, sheet, raw_header=raw_header) as (header, rows):
        return header, counted(rows)


def text(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def types_workbook(tmp_path: Path) -> Path:
    return xlsx_file(tmp_path, {"Sheet": [
        ["Account", "Amount", "When", "Flag", "At"],
        [1001, 129.9, date(2024, 1, 5), True, time(12, 30)],
        ["X-1", 1.0, datetime(2024, 1, 5, 10, 0), False, None],
    ]})


def test_xlsx_cells_come_in_their_types(tmp_path):
    header, rows = read_xlsx(types_workbook(tmp_path))
    assert header == ["account", "amount", "when", "flag", "at"]
    assert rows == [(2, [1001, 129.9, datetime(2024, 1, 5), True, time(12, 30)]),
                    (3, ["X-1", 1, datetime(2024, 1, 5, 10, 0), False, None])]
    assert type(rows[0][1][0]) is int and type(rows[1][1][1]) is int


def blank_rows_workbook(tmp_path: Path) -> Path:
    return xlsx_file(tmp_path, {"Sheet": [["a", "b"], [None, None], ["  ", None], [1, 2], [], [3, None],
                                          [None, 0], ["  ", "x"], [" ", "  "]]})


def test_xlsx_blank_rows_are_skipped_and_lines_are_sheet_rows(tmp_path):
    # Rows whose first cell is blank are filled by any later value (the count looks at them whole).
    assert read_xlsx(blank_rows_workbook(tmp_path))[1] == [(4, [1, 2]), (6, [3, None]), (7, [None, 0]),
                                                           (8, [None, "x"])]


def test_xlsx_marks_are_found_beside_the_load_and_a_broken_sheet_xml_fails_the_file(tmp_path, monkeypatch):
    """The scan of the sheet's XML for marks runs on a thread while calamine loads the sheet; it
    is done when the file is open, and a fault it meets fails the file there, as a corrupt one."""
    import threading

    path = blank_rows_workbook(tmp_path)
    with open_rows(path, "xlsx", None) as (_, rows):
        assert not [t for t in threading.enumerate() if t.name == "xlsx-marks"]
        assert rows.count() == 4

    def broken(stream):
        raise zipfile.BadZipFile("bad CRC")
        yield  # a generator, as _marked_cells

    monkeypatch.setattr(xlsx, "_marked_cells", broken)
    with pytest.raises(ImportFailure, match="corrupt: BadZipFile"), open_rows(path, "xlsx", None):
        pass

    def failing(stream):
        raise RuntimeError("unexpected")
        yield

    monkeypatch.setattr(xlsx, "_marked_cells", failing)  # anything else is raised as it is, never lost
    with pytest.raises(RuntimeError, match="unexpected"), open_rows(path, "xlsx", None):
        pass


def raw_header_workbook(tmp_path: Path) -> Path:
    return xlsx_file(tmp_path, {"Sheet": [[" Customer Account ", "Name", None, 2024], ["C-1", "x", None, 1]]})


def test_xlsx_raw_header(tmp_path):
    assert read_xlsx(raw_header_workbook(tmp_path), raw_header=True)[0] == ["Customer Account", "Name", "", "2024"]


def formulas_workbook(tmp_path: Path) -> Path:
    # openpyxl saves formulas without a computed value, as many programs do.
    return xlsx_file(tmp_path, {"Sheet": [["a", "b", "c"], [2, "=A2*2", "x"], [3, None, "=UPPER(B3)"]]})


def test_xlsx_formula_without_a_value_is_reported_with_its_formula(tmp_path):
    _, rows = read_xlsx(formulas_workbook(tmp_path))
    assert rows == [(2, [2, FormulaWithoutValue("=A2*2"), "x"]), (3, [3, None, FormulaWithoutValue("=UPPER(B3)")])]
    marker = rows[0][1][1]
    assert not isinstance(marker, str)
    assert (marker.formula, str(marker), marker.code) == ("=A2*2", "=A2*2", "FORMULA_WITHOUT_VALUE")


def cached_values_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + text("B1", "b") + text("C1", "c") + '</row>'
                    '<row r="2"><c r="A2"><v>2</v></c><c r="B2"><f>A2*2</f><v>4</v></c>'
                    '<c r="C2" t="str"><f>IF(A2&gt;5,"big","")</f><v></v></c></row>'
                    '<row r="3"><c r="A3"><v>3</v></c><c r="B3"><f>A3*2</f><v/></c>'
                    '<c r="C3" t="str"><f>"x"</f><v>x</v></c></row>')


def test_xlsx_formula_with_a_cached_value_gives_the_value(tmp_path):
    assert read_xlsx(cached_values_workbook(tmp_path))[1] == [(2, [2, 4, None]),
                                                              (3, [3, FormulaWithoutValue("=A3*2"), "x"])]


def shared_formulas_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + text("B1", "b") + '</row>'
                    '<row r="2"><c r="A2"><v>1</v></c><c r="B2"><f t="shared" ref="B2:B4" si="0">A2*2</f></c></row>'
                    '<row r="3"><c r="A3"><v>2</v></c><c r="B3"><f t="shared" si="0"/></c></row>'
                    '<row r="4"><c r="A4"><v>3</v></c><c r="B4"><f t="shared" si="0"/><v>6</v></c></row>'
                    '<row r="5"><c r="A5"><v>4</v></c><c r="B5"><f t="shared" si="9"/></c></row>')


def test_xlsx_shared_formulas_without_values_show_their_own_formula(tmp_path):
    assert read_xlsx(shared_formulas_workbook(tmp_path))[1] == [
        (2, [1, FormulaWithoutValue("=A2*2")]), (3, [2, FormulaWithoutValue("=A3*2")]), (4, [3, 6]),
        (5, [4, FormulaWithoutValue("(shared formula)")])]


def errors_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + text("B1", "b") + '</row>'
                    '<row r="2"><c r="A2" t="e"><v>#N/A</v></c><c r="B2" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>')


def test_xlsx_error_values_read_as_their_text(tmp_path):
    assert read_xlsx(errors_workbook(tmp_path))[1] == [(2, ["#N/A", "#DIV/0!"])]


def formulas_beyond_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + '</row>'
                    '<row r="2"><c r="A2"><v>1</v></c><c r="C2"><f>A2+1</f></c></row>'
                    '<row r="4"><c r="B4"><f>SUM(A2:A3)</f></c></row>')


def test_xlsx_formulas_beyond_the_values_are_still_reported(tmp_path):
    assert read_xlsx(formulas_beyond_workbook(tmp_path))[1] == [(2, [1, None, FormulaWithoutValue("=A2+1")]),
                                                                (4, [None, FormulaWithoutValue("=SUM(A2:A3)")])]


def prefixed_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, '<x:row><x:c t="inlineStr"><x:is><x:t>a</x:t></x:is></x:c>'
                    '<x:c t="inlineStr"><x:is><x:t>b</x:t></x:is></x:c></x:row>'
                    '<x:row><x:c><x:v>1</x:v></x:c><x:c><x:f>A2+1</x:f></x:c></x:row>'
                    '<x:row><x:c t="e"><x:v>#REF!</x:v></x:c><x:c><x:v>5</x:v></x:c></x:row>', prefix="x")


def test_xlsx_with_a_namespace_prefix_and_cells_without_references(tmp_path):
    assert read_xlsx(prefixed_workbook(tmp_path)) == (["a", "b"], [(2, [1, FormulaWithoutValue("=A2+1")]),
                                                                  (3, ["#REF!", 5])])


def column_b_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, '<row r="1">' + text("B1", "a") + text("C1", "b") + '</row>'
                    '<row r="3"><c r="C3"><v>7</v></c></row>')


def test_xlsx_data_from_column_b_keeps_its_columns(tmp_path):
    assert read_xlsx(column_b_workbook(tmp_path)) == (["", "a", "b"], [(3, [None, None, 7])])


def formula_header_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, '<row r="1"><c r="A1"><f>"id"</f></c></row>'
                    '<row r="2"><c r="A2"><v>1</v></c></row><row r="3"><c r="A3"><v>2</v></c></row>')


def test_xlsx_lines_stay_sheet_rows_when_row_1_holds_no_value(tmp_path):
    # Row 1 is a formula saved without its value; the rows below keep their own numbers.
    assert read_xlsx(formula_header_workbook(tmp_path), raw_header=True) == (['="id"'], [(2, [1]), (3, [2])])


def test_xlsx_without_a_first_row_has_no_header(tmp_path):
    path = xml_xlsx(tmp_path, '<row r="2">' + text("A2", "a") + '</row>')
    with pytest.raises(ImportFailure) as failure:
        read_xlsx(path)
    assert failure.value.code == "EMPTY_FILE"


def two_sheets_workbook(tmp_path: Path) -> Path:
    return xlsx_file(tmp_path, {"Customers": [["a"], ["first"]], "Orders": [["b"], ["second"]]})


def test_xlsx_sheet_selection(tmp_path):
    path = two_sheets_workbook(tmp_path)
    assert read_xlsx(path) == (["a"], [(2, ["first"])])
    assert read_xlsx(path, "Orders") == (["b"], [(2, ["second"])])


def test_xlsx_sheet_not_found_names_the_sheets(tmp_path):
    path = xlsx_file(tmp_path, {"Customers": [["a"]], "Orders": [["b"]]})
    with pytest.raises(ImportFailure) as failure:
        read_xlsx(path, "Kunden")
    assert failure.value.code == "SHEET_NOT_FOUND"
    assert failure.value.message == "no sheet named 'Kunden'; the workbook has Customers, Orders"


def test_xlsx_empty_sheet(tmp_path):
    path = xlsx_file(tmp_path, {"Empty": []})
    with pytest.raises(ImportFailure) as failure:
        read_xlsx(path)
    assert failure.value.code == "EMPTY_FILE"


def test_xlsx_header_only(tmp_path):
    assert read_xlsx(xlsx_file(tmp_path, {"Sheet": [["a", "b"]]})) == (["a", "b"], [])


def test_a_file_that_is_not_a_workbook_is_invalid(tmp_path):
    path = tmp_path / "file.xlsx"
    path.write_bytes(b"name,city\nx,y\n")
    with pytest.raises(ImportFailure) as failure:
        read_xlsx(path)
    assert failure.value.code == "INVALID_FILE"


def long_sheet(references: bool) -> tuple[str, list]:
    """40,000 rows (more than one stretch the readers search at a time) with formulas without a
    value, error cells and formulas with one far down; the XML and the rows it gives."""
    def cell(ref: str, inner: str, kind: str = "") -> str:
        attributes = (f' r="{ref}"' if references else "") + (f' t="{kind}"' if kind else "")
        return f"<c{attributes}>{inner}</c>"

    rows = ['<row r="1">' + text("A1", "a") + text("B1", "b") + "</row>"]
    expected = []
    for n in range(2, 40_002):
        if n % 9_973 == 0:
            second, value = cell(f"B{n}", f"<f>A{n}*2</f>"), FormulaWithoutValue(f"=A{n}*2")
        elif n % 10_007 == 0:
            second, value = cell(f"B{n}", "<v>#N/A</v>", "e"), "#N/A"
        elif n % 1_000 == 0:
            second, value = cell(f"B{n}", f"<f>A{n}*2</f><v>{2 * n}</v>"), 2 * n
        else:
            second, value = cell(f"B{n}", f"<v>{n}.5</v>"), n + 0.5
        row = f' r="{n}"' if references else ""
        rows.append(f"<row{row}>" + cell(f"A{n}", f"<v>{n}</v>") + second + "</row>")
        expected.append((n, [n, value]))
    return "".join(rows), expected


@pytest.mark.parametrize("references", [True, False])
def test_xlsx_marks_far_down_a_long_sheet(tmp_path, references):
    xml, expected = long_sheet(references)
    assert read_xlsx(xml_xlsx(tmp_path, xml))[1] == expected


# --- XLSX: calamine and the streaming reader ---------------------------------------------------
# A sheet whose XML is larger than IMPORT_XLSX_STREAM_BYTES is streamed; the rows must be the ones
# calamine gives, so every workbook here is read both ways.


def column(index: int, line: int) -> str:
    return f"{get_column_letter(index + 1)}{line}"


def shared_strings_workbook(tmp_path: Path) -> Path:
    strings = ('<si><t>account</t></si><si><t>name</t></si><si><t/></si><si><t xml:space="preserve"> kept </t></si>'
               '<si><t> trimmed </t></si><si><r><t>rich </t></r><r><rPr><b/></rPr><t xml:space="preserve">text</t></r>'
               '</si><si><t>漢字</t><rPh sb="0" eb="2"><t>かんじ</t></rPh></si><si><t>line_x000D_break</t></si>'
               '<si><t>Smith &amp; Sons</t></si>')
    return xml_xlsx(tmp_path, '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
                    '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>'
                    '<row r="3"><c r="A3" t="s"><v>4</v></c><c r="B3" t="s"><v>5</v></c></row>'
                    '<row r="4"><c r="A4" t="s"><v>6</v></c><c r="C4" t="s"><v>7</v></c></row>'
                    '<row r="6"><c r="B6" t="s"><v>8</v></c><c r="C6" t="s"><v></v></c></row>', strings=strings)


def values_workbook(tmp_path: Path) -> Path:
    return xlsx_file(tmp_path, {"Sheet": [
        ["Account", "Amount", "Big", "When", "At", "Flag", None, "Note"],
        [1001, 129.9, 10**15, date(2024, 1, 5), time(12, 30), True, None, "  "],
        ["X-1", 1.0, 123456789012345, datetime(2024, 1, 5, 10, 0, 0, 500000), time(0, 0), False, None, "Müller\nKöln"],
        [],
        [-7, -0.5, 2**53 + 1, datetime(1900, 1, 1), time(23, 59, 59), None, None, None, "beyond the header"],
        [None, 1e-7, -(10**15), datetime(1900, 3, 1), None, None, None, " & <x> "],
    ]})


def cell_kinds_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, '<row r="1">' + "".join(text(column(i, 1), name) for i, name in enumerate("abcd")) +
                    '</row><row r="2"><c r="A2" t="b"><v>1</v></c><c r="B2" t="b"><v>false</v></c>'
                    '<c r="C2" t="str"><v>12</v></c><c r="D2" t="d"><v>2024-01-05T10:30:00</v></c></row>'
                    '<row r="3"><c r="A3"><v>1e3</v></c><c r="B3"><v>-0</v></c><c r="C3"><v>not a number</v></c>'
                    '<c r="D3" t="d"><v>2024-01-05</v></c></row>'
                    '<row r="4"><c r="A4" t="inlineStr"><is><r><t>in</t></r><r><t xml:space="preserve">line </t></r>'
                    '</is></c><c r="B4" t="inlineStr"><is><t><![CDATA[<b>&]]></t></is></c>'
                    '<c r="C4"><v><![CDATA[7]]></v></c><c r="D4" t="inlineStr"><is><t>  </t></is></c></row>'
                    '<row r="5"><c r="A5" t="str"><v>a_x0041_</v></c><c r="B5"><v>b_x0041_</v></c><c r="C5" t="d">'
                    '<v>10:30</v></c><c r="D5" t="inlineStr"><is><t>x_x000D_y</t></is></c></row>'
                    '<row r="6"><c r="b6"><v>6</v></c><c r="C6"><v>1</v><f>A1</f></c></row>')


NUMBER_FORMATS = ("yyyy-mm-dd hh:mm", "[h]:mm:ss", "mm:ss", 'h "h"', '0.0 "days"', "d;0", "#,##0*d", "\\d0",
                  "[Red]0.00", "[$-409]mmm d", "A/P", "General", 14, 22, 45, 46, 47, 3, 0, 57)
SERIALS = ("45000.25", "45000", "0.5", "-1.5", "0", "59", "60", "61", "1462", "2957004", "2958465", "2958466",
           "0.0000057870370370370", "1.9999999999", "12.3456789")


def number_formats_workbook(tmp_path: Path, *, date1904: bool = False) -> Path:
    header = "".join(text(column(i, 1), f"format {i}") for i in range(len(NUMBER_FORMATS)))
    rows = "".join(f'<row r="{n}">' + "".join(f'<c r="{column(i, n)}" s="{i}"><v>{serial}</v></c>'
                                               for i in range(len(NUMBER_FORMATS))) + "</row>"
                   for n, serial in enumerate(SERIALS, start=2))
    no_style = '<row r="30"><c r="A30"><v>45000.25</v></c><c r="B30" s="x"><v>45000.25</v></c></row>'
    return xml_xlsx(tmp_path, f'<row r="1">{header}</row>{rows}{no_style}', formats=NUMBER_FORMATS,
                    date1904=date1904)


def dates_1904_workbook(tmp_path: Path) -> Path:
    return number_formats_workbook(tmp_path, date1904=True)


def openpyxl_1904_workbook(tmp_path: Path) -> Path:
    workbook = Workbook()
    workbook.epoch = CALENDAR_MAC_1904
    sheet = workbook.active
    for row in (["when", "at"], [date(2024, 1, 5), time(6, 0)], [datetime(1904, 1, 2, 12, 0), time(23, 59)]):
        sheet.append(row)
    path = tmp_path / "mac.xlsx"
    workbook.save(path)
    return path


def blank_rows_and_widths_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, '<row r="1">' + text("B1", "a") + text("C1", "b") + '</row>'
                    '<row r="2"><c r="A2" s="0"/><c r="D2" t="n"><v></v></c></row>'  # empty cells: a blank row
                    '<row r="3"><c r="C3"><v>7</v></c></row>'
                    '<row r="5"><c r="B5" t="inlineStr"><is><t> </t></is></c></row>'
                    '<row r="6"><c r="A6"><v>1</v></c><c r="F6" t="e"><v>#N/A</v></c></row>'  # widens the sheet
                    '<row r="7"><c r="H7" s="0"/><c r="A7"><f>B7</f><v>2</v></c></row>'  # an empty cell does not
                    '<row r="8"><c r="B8"><f>A8*2</f></c></row>'  # after the last value: as wide as its formula
                    '<row r="9"><c r="D9"><f>A9*2</f></c></row>')


def inline_strings_workbook(tmp_path: Path) -> Path:
    """As the bench writes its customers: openpyxl's write-only mode, inline strings, cells left out."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("customers")
    sheet.append(["customer_account", "name", "credit_limit", "email"])
    for n in range(1, 3_000):
        sheet.append([f"CU{n:08d}", f"Smith & Sons {n}", None if n % 7 == 0 else n * 1.25, "" if n % 5 else None])
    path = tmp_path / "customers.xlsx"
    workbook.save(path)
    return path


def wide_late_workbook(tmp_path: Path) -> Path:
    """A long sheet whose widest cell comes near its end, and whose last rows hold only empty cells
    or formulas without a value."""
    rows = [f'<row r="{n}">' + text(f"A{n}", f"name {n}") + f'<c r="B{n}"><v>{n}</v></c>'
            + (f'<c r="AC{n}"><v>1</v></c>' if n == 14_000 else "") + "</row>" for n in range(1, 15_000)]
    rows += [f'<row r="{n}"><c r="A{n}" s="0"/><c r="C{n}" t="n"><v></v></c></row>' for n in range(15_000, 16_000)]
    rows += [f'<row r="{n}"><c r="B{n}"><f>A{n}*2</f></c></row>' for n in range(16_000, 16_010)]
    return xml_xlsx(tmp_path, "".join(rows))


def long_sheet_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, long_sheet(True)[0])


def long_sheet_without_references_workbook(tmp_path: Path) -> Path:
    return xml_xlsx(tmp_path, long_sheet(False)[0])


WORKBOOKS = {  # name: (the workbook, the sheet to read)
    "types": (types_workbook, ""),
    "values": (values_workbook, ""),
    "blank rows": (blank_rows_workbook, ""),
    "blank rows, skipped columns and widths": (blank_rows_and_widths_workbook, ""),
    "raw header": (raw_header_workbook, ""),
    "shared strings": (shared_strings_workbook, ""),
    "inline strings": (inline_strings_workbook, ""),
    "cell kinds": (cell_kinds_workbook, ""),
    "number formats": (number_formats_workbook, ""),
    "dates from 1904": (dates_1904_workbook, ""),
    "openpyxl's 1904 dates": (openpyxl_1904_workbook, ""),
    "formulas without values": (formulas_workbook, ""),
    "formulas with values": (cached_values_workbook, ""),
    "shared formulas": (shared_formulas_workbook, ""),
    "errors": (errors_workbook, ""),
    "formulas beyond the values": (formulas_beyond_workbook, ""),
    "formula header": (formula_header_workbook, ""),
    "namespace prefix, no references": (prefixed_workbook, ""),
    "from column B": (column_b_workbook, ""),
    "second sheet": (two_sheets_workbook, "Orders"),
    "widest cell late": (wide_late_workbook, ""),
    "long sheet": (long_sheet_workbook, ""),
    "long sheet without references": (long_sheet_without_references_workbook, ""),
}


def read_both_ways(path: Path, sheet: str, settings, monkeypatch) -> tuple:
    settings.IMPORT_XLSX_STREAM_BYTES = 1 << 40
    by_calamine = read_xlsx(path, sheet, raw_header=True)
    settings.IMPORT_XLSX_STREAM_BYTES = 0
    with monkeypatch.context() as patch:
        patch.setattr(xlsx, "_calamine_sheet", None)  # streamed, or this fails
        streamed = read_xlsx(path, sheet, raw_header=True)
    return by_calamine, streamed


def typed(rows: list) -> list:
    """Rows with each value's type beside it: 1 and 1.0, or a date and a datetime, are not alike."""
    return [(line, [(type(v), v) for v in values]) for line, values in rows]


@pytest.mark.parametrize("name", WORKBOOKS)
def test_xlsx_streamed_rows_are_calamines(tmp_path, settings, monkeypatch, name):
    build, sheet = WORKBOOKS[name]
    (calamine_header, calamine_rows), (header, rows) = read_both_ways(build(tmp_path), sheet, settings, monkeypatch)
    assert rows
    assert header == calamine_header
    assert typed(rows) == typed(calamine_rows)


def test_xlsx_streamed_values(tmp_path, settings, monkeypatch):
    # What the comparison above holds the streaming reader to, spelled out for a few cells.
    by_calamine, (header, rows) = read_both_ways(cell_kinds_workbook(tmp_path), "", settings, monkeypatch)
    assert header == ["a", "b", "c", "d"]
    assert rows == [(2, [True, False, "12", datetime(2024, 1, 5, 10, 30)]),
                    (3, [1000, 0, "not a number", datetime(2024, 1, 5)]),
                    (4, ["inline ", "<b>&", None, None]),
                    (5, ["aA", "b_x0041_", time(10, 30), "x\ry"]),
                    (6, [None, 6, None, None])]
    _, (_, rows) = read_both_ways(number_formats_workbook(tmp_path), "", settings, monkeypatch)
    assert rows[0][1][:4] == [datetime(2023, 3, 15, 6, 0), timedelta(days=45000, hours=6),
                              datetime(2023, 3, 15, 6, 0), datetime(2023, 3, 15, 6, 0)]
    assert rows[0][1][4:6] == [45000.25, datetime(2023, 3, 15, 6, 0)]


def test_xlsx_large_sheets_are_streamed_and_small_ones_read_by_calamine(tmp_path, settings, monkeypatch):
    path = types_workbook(tmp_path)
    with zipfile.ZipFile(path) as archive:
        size = archive.getinfo("xl/worksheets/sheet1.xml").file_size
    calamine = xlsx._calamine_sheet
    used = []
    monkeypatch.setattr(xlsx, "_calamine_sheet", lambda *args: used.append(1) or calamine(*args))
    settings.IMPORT_XLSX_STREAM_BYTES = size
    read_xlsx(path)
    assert used == [1]
    settings.IMPORT_XLSX_STREAM_BYTES = size - 1
    read_xlsx(path)
    assert used == [1]


def test_xlsx_streaming_finds_the_width_by_searching_a_sheet_with_references(tmp_path, settings, monkeypatch):
    parsed, parses = xlsx_stream._parsed, []
    monkeypatch.setattr(xlsx_stream, "_parsed", lambda *args: parses.append(1) or parsed(*args))
    settings.IMPORT_XLSX_STREAM_BYTES = 0
    path = xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + '</row>'
                    '<row r="2"><c r="A2"><v>1</v></c><c r="C2"/></row>')  # an empty cell last
    assert read_xlsx(path)[1] == [(2, [1])]
    assert len(parses) == 2  # the rows and the count, once each; the width came from searching the XML
    read_xlsx(prefixed_workbook(tmp_path))
    assert len(parses) == 6  # cells without references: parsed for the width, then for the rows (twice)


@pytest.mark.parametrize(("cell", "detail"), [
    ('<c r="A2" t="s"><v>3</v></c>', "cell A2 refers to the missing shared string '3'"),
    ('<c r="A2" t="n"><v>1,5</v></c>', "cell A2 holds '1,5', not a number"),
    ('<c r="A2" t="b"><v>yes</v></c>', "cell A2 holds 'yes', not a boolean"),
])
def test_a_streamed_sheet_with_a_cell_calamine_refuses_is_invalid(tmp_path, settings, cell, detail):
    path = xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + f'</row><row r="2">{cell}</row>',
                    strings="<si><t>x</t></si>")
    for threshold in (1 << 40, 0):
        settings.IMPORT_XLSX_STREAM_BYTES = threshold
        with pytest.raises(ImportFailure) as failure:
            read_xlsx(path)
        assert failure.value.code == "INVALID_FILE"
    assert failure.value.message == f"the workbook is corrupt: {detail}"


def test_a_panic_in_calamine_is_a_corrupt_file_not_a_lost_task():
    from core.imports import xlsx
    from core.imports.readers import ImportFailure

    class PanicException(BaseException):  # what pyo3 raises when calamine's Rust code panics
        pass

    def rows():
        yield ["customer_account"]
        raise PanicException("out of range")

    class Sheet:
        start = (0, 0)

        def iter_rows(self):
            return rows()

    read = xlsx._calamine_rows(Sheet())
    assert next(read) == (1, ["customer_account"])
    with pytest.raises(ImportFailure) as failure:
        next(read)
    assert failure.value.code == "INVALID_FILE"
