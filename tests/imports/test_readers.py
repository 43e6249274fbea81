"""The import file readers on their own: what (line, values) a person's file gives."""

from __future__ import annotations

import csv
import zipfile
from datetime import date, datetime, time
from pathlib import Path

import pytest
from openpyxl import Workbook

from core.imports.models import Dialect
from core.imports.readers import FormulaWithoutValue, ImportFailure, clean_header, open_rows, sniff_csv

# --- CSV ---------------------------------------------------------------------------------------


def read_csv(tmp_path: Path, content: str | bytes, *, encoding: str = "utf-8", dialect: Dialect | None = None,
             raw_header: bool = False):
    path = tmp_path / "file.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    with open_rows(path, "csv", dialect or sniff_csv(path), raw_header=raw_header) as (header, rows):
        return header, list(rows)


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
        assert (header, list(rows)) == csv_module_rows(path)


def test_the_csv_reader_reads_cp1252_as_the_csv_module_does(tmp_path):
    path = tmp_path / "file.csv"
    path.write_bytes("name;ort\nMüller;Köln €\n\nSöhne;\"Zürich\r\nHof\"\n".encode("cp1252"))
    assert sniff_csv(path).encoding == "cp1252"
    with open_rows(path, "csv", sniff_csv(path)) as (header, rows):
        assert (header, list(rows)) == csv_module_rows(path)


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


def xml_xlsx(tmp_path: Path, sheet_data: str, *, prefix: str = "") -> Path:
    """A workbook written cell by cell, as programs other than Excel write them."""
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
        archive.writestr("xl/workbook.xml", f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
                                            f'<sheet name="Data" sheetId="1" r:id="rId7"/></sheets></workbook>')
        archive.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{package}"><Relationship Id="rId7" '
                                                       f'Type="{rel}/worksheet" Target="/xl/worksheets/data.xml"/>'
                                                       f'</Relationships>')
        archive.writestr("xl/worksheets/data.xml", f'<?xml version="1.0" encoding="UTF-8"?><{p}worksheet '
                                                   f'{xmlns}="{main}"><{p}sheetData>{sheet_data}</{p}sheetData>'
                                                   f'</{p}worksheet>')
    return path


def read_xlsx(path: Path, sheet: str = "", *, raw_header: bool = False):
    with open_rows(path, "xlsx", None, sheet, raw_header=raw_header) as (header, rows):
        return header, list(rows)


def text(ref: str, value: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{value}</t></is></c>'


def test_xlsx_cells_come_in_their_types(tmp_path):
    path = xlsx_file(tmp_path, {"Sheet": [
        ["Account", "Amount", "When", "Flag", "At"],
        [1001, 129.9, date(2024, 1, 5), True, time(12, 30)],
        ["X-1", 1.0, datetime(2024, 1, 5, 10, 0), False, None],
    ]})
    header, rows = read_xlsx(path)
    assert header == ["account", "amount", "when", "flag", "at"]
    assert rows == [(2, [1001, 129.9, datetime(2024, 1, 5), True, time(12, 30)]),
                    (3, ["X-1", 1, datetime(2024, 1, 5, 10, 0), False, None])]
    assert type(rows[0][1][0]) is int and type(rows[1][1][1]) is int


def test_xlsx_blank_rows_are_skipped_and_lines_are_sheet_rows(tmp_path):
    path = xlsx_file(tmp_path, {"Sheet": [["a", "b"], [None, None], ["  ", None], [1, 2], [], [3, None]]})
    assert read_xlsx(path)[1] == [(4, [1, 2]), (6, [3, None])]


def test_xlsx_raw_header(tmp_path):
    path = xlsx_file(tmp_path, {"Sheet": [[" Customer Account ", "Name", None, 2024], ["C-1", "x", None, 1]]})
    assert read_xlsx(path, raw_header=True)[0] == ["Customer Account", "Name", "", "2024"]


def test_xlsx_formula_without_a_value_is_reported_with_its_formula(tmp_path):
    # openpyxl saves formulas without a computed value, as many programs do.
    path = xlsx_file(tmp_path, {"Sheet": [["a", "b", "c"], [2, "=A2*2", "x"], [3, None, "=UPPER(B3)"]]})
    _, rows = read_xlsx(path)
    assert rows == [(2, [2, FormulaWithoutValue("=A2*2"), "x"]), (3, [3, None, FormulaWithoutValue("=UPPER(B3)")])]
    marker = rows[0][1][1]
    assert not isinstance(marker, str)
    assert (marker.formula, str(marker), marker.code) == ("=A2*2", "=A2*2", "FORMULA_WITHOUT_VALUE")


def test_xlsx_formula_with_a_cached_value_gives_the_value(tmp_path):
    path = xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + text("B1", "b") + text("C1", "c") + '</row>'
                    '<row r="2"><c r="A2"><v>2</v></c><c r="B2"><f>A2*2</f><v>4</v></c>'
                    '<c r="C2" t="str"><f>IF(A2&gt;5,"big","")</f><v></v></c></row>'
                    '<row r="3"><c r="A3"><v>3</v></c><c r="B3"><f>A3*2</f><v/></c>'
                    '<c r="C3" t="str"><f>"x"</f><v>x</v></c></row>')
    assert read_xlsx(path)[1] == [(2, [2, 4, None]), (3, [3, FormulaWithoutValue("=A3*2"), "x"])]


def test_xlsx_shared_formulas_without_values_show_their_own_formula(tmp_path):
    path = xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + text("B1", "b") + '</row>'
                    '<row r="2"><c r="A2"><v>1</v></c><c r="B2"><f t="shared" ref="B2:B4" si="0">A2*2</f></c></row>'
                    '<row r="3"><c r="A3"><v>2</v></c><c r="B3"><f t="shared" si="0"/></c></row>'
                    '<row r="4"><c r="A4"><v>3</v></c><c r="B4"><f t="shared" si="0"/><v>6</v></c></row>'
                    '<row r="5"><c r="A5"><v>4</v></c><c r="B5"><f t="shared" si="9"/></c></row>')
    assert read_xlsx(path)[1] == [(2, [1, FormulaWithoutValue("=A2*2")]), (3, [2, FormulaWithoutValue("=A3*2")]),
                                  (4, [3, 6]), (5, [4, FormulaWithoutValue("(shared formula)")])]


def test_xlsx_error_values_read_as_their_text(tmp_path):
    path = xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + text("B1", "b") + '</row>'
                    '<row r="2"><c r="A2" t="e"><v>#N/A</v></c><c r="B2" t="e"><f>1/0</f><v>#DIV/0!</v></c></row>')
    assert read_xlsx(path)[1] == [(2, ["#N/A", "#DIV/0!"])]


def test_xlsx_formulas_beyond_the_values_are_still_reported(tmp_path):
    path = xml_xlsx(tmp_path, '<row r="1">' + text("A1", "a") + '</row>'
                    '<row r="2"><c r="A2"><v>1</v></c><c r="C2"><f>A2+1</f></c></row>'
                    '<row r="4"><c r="B4"><f>SUM(A2:A3)</f></c></row>')
    assert read_xlsx(path)[1] == [(2, [1, None, FormulaWithoutValue("=A2+1")]),
                                  (4, [None, FormulaWithoutValue("=SUM(A2:A3)")])]


def test_xlsx_with_a_namespace_prefix_and_cells_without_references(tmp_path):
    path = xml_xlsx(tmp_path, '<x:row><x:c t="inlineStr"><x:is><x:t>a</x:t></x:is></x:c>'
                    '<x:c t="inlineStr"><x:is><x:t>b</x:t></x:is></x:c></x:row>'
                    '<x:row><x:c><x:v>1</x:v></x:c><x:c><x:f>A2+1</x:f></x:c></x:row>'
                    '<x:row><x:c t="e"><x:v>#REF!</x:v></x:c><x:c><x:v>5</x:v></x:c></x:row>', prefix="x")
    assert read_xlsx(path) == (["a", "b"], [(2, [1, FormulaWithoutValue("=A2+1")]), (3, ["#REF!", 5])])


def test_xlsx_data_from_column_b_keeps_its_columns(tmp_path):
    path = xml_xlsx(tmp_path, '<row r="1">' + text("B1", "a") + text("C1", "b") + '</row>'
                    '<row r="3"><c r="C3"><v>7</v></c></row>')
    assert read_xlsx(path) == (["", "a", "b"], [(3, [None, None, 7])])


def test_xlsx_without_a_first_row_has_no_header(tmp_path):
    path = xml_xlsx(tmp_path, '<row r="2">' + text("A2", "a") + '</row>')
    with pytest.raises(ImportFailure) as failure:
        read_xlsx(path)
    assert failure.value.code == "EMPTY_FILE"


def test_xlsx_sheet_selection(tmp_path):
    path = xlsx_file(tmp_path, {"Customers": [["a"], ["first"]], "Orders": [["b"], ["second"]]})
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



@pytest.mark.parametrize("references", [True, False])
def test_xlsx_marks_far_down_a_long_sheet(tmp_path, references):
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
    assert read_xlsx(xml_xlsx(tmp_path, "".join(rows)))[1] == expected
