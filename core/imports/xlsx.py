"""XLSX workbooks for the import readers: a sheet read whole by calamine, or streamed.

Calamine is fast, but it loads the whole sheet (and briefly holds it about twice), so a sheet
whose XML is larger than IMPORT_XLSX_STREAM_BYTES is streamed instead: expat parses its XML in
blocks and each row is given as soon as it is complete; only the table of shared strings is held.
Both give the same (line, values), value for value: the streaming reader reads cells as calamine
0.37 does (its number parsing, date formats, padding of rows to the sheet's width), so which one
read a file never shows.

Calamine reads a formula without a cached value, and an error value (#N/A, #DIV/0!), as an empty
cell; the sheet's XML says what they are. For calamine a scan of the XML restores them (a
FormulaWithoutValue, the error's text); the streaming reader sees them as it goes.
"""

from __future__ import annotations

import posixpath
import re
import threading
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, ClassVar
from xml.parsers import expat

from django.conf import settings

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Numbers calamine reads as floats; a whole one is an int, as Excel shows it (1001, not 1001.0),
# below 10**15 where Excel itself still writes every digit.
_WHOLE = 10**15
_BROKEN = (zipfile.BadZipFile, zlib.error, ET.ParseError, expat.ExpatError, KeyError, ValueError, OSError, EOFError)
_BLOCK = 1 << 16


class ImportFailure(Exception):
    """The file as a whole cannot be imported (a stable code and a message for people)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class FormulaWithoutValue:
    """An XLSX formula cell saved without its computed value (a program wrote the formula and
    no spreadsheet application ever calculated it), so the value is not in the file."""

    formula: str
    code: ClassVar[str] = "FORMULA_WITHOUT_VALUE"

    def __str__(self) -> str:
        return self.formula


Source = Callable[[], Iterator[tuple[int, list[Any]]]]


class Rows:
    """The data rows of an opened file as (line, values), to be read once, and count(): how many
    there are, from a second pass over what is already open (calamine's loaded sheet, the
    streamed sheet's shared strings) rather than opening the file again."""

    __slots__ = ("_rows", "_count")

    def __init__(self, rows: Iterator[tuple[int, list[Any]]], count: Callable[[], int]) -> None:
        self._rows = rows
        self._count = count

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        return self._rows

    def __next__(self) -> tuple[int, list[Any]]:
        return next(self._rows)

    def count(self) -> int:
        return self._count()


def _corrupt(detail: str) -> ImportFailure:
    return ImportFailure("INVALID_FILE", f"the workbook is corrupt: {detail}")


def check_xlsx(path: Path) -> None:
    """Refuse what no workbook reader should open: encrypted files, non-zips, zip bombs."""
    with path.open("rb") as f:
        magic = f.read(8)
    if magic == OLE_MAGIC:
        raise ImportFailure("ENCRYPTED_FILE", "the workbook is password-protected (or an old .xls); "
                                              "save it as an unprotected .xlsx")
    if not zipfile.is_zipfile(path):
        raise ImportFailure("INVALID_FILE", "the file is not a valid .xlsx workbook")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise ImportFailure("INVALID_FILE", "the .xlsx file is corrupt") from None
    unpacked = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    if unpacked > settings.IMPORT_MAX_UNPACKED_BYTES or unpacked / packed > 250:
        raise ImportFailure("ZIP_BOMB", "the workbook unpacks to far more data than it holds; refused")


def xlsx_rows(path: Path, sheet: str, resources: ExitStack) -> tuple[list[Any], Rows]:
    """The sheet's header (its row 1; [] when the sheet does not start there) and its data rows
    as (line, values), blank rows skipped."""
    from core.imports.xlsx_stream import streamed_rows  # it builds on this module

    check_xlsx(path)
    source = streamed_rows(path, sheet, resources) or _calamine_sheet(path, sheet, resources)
    rows = source()
    try:
        line, header = next(rows, (1, []))
    except _BROKEN as exc:
        raise _corrupt(type(exc).__name__) from None

    def count() -> int:
        quick = getattr(source, "count", None)  # calamine's loaded sheet counts without building rows
        if quick is not None:
            return quick()
        again = source()
        try:
            next(again, None)  # the header
        except _BROKEN as exc:
            raise _corrupt(type(exc).__name__) from None
        return sum(1 for _ in _data(again))

    return (header if line == 1 else []), Rows(_data(rows), count)


def _data(rows: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[int, list[Any]]]:
    try:
        for line, values in rows:
            first = values[0] if values else None  # mostly filled, which settles it
            if ((first is not None and (first.__class__ is not str or first.strip()))
                    or any(v is not None and (v.__class__ is not str or v.strip()) for v in values)):
                yield line, values
    except _BROKEN as exc:
        raise _corrupt(type(exc).__name__) from None


# --- calamine ----------------------------------------------------------------------------------


def _calamine_sheet(path: Path, sheet: str, resources: ExitStack) -> Source:
    """The sheet loaded by calamine, and a function that gives its rows (again and again)."""
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    try:
        workbook = resources.enter_context(CalamineWorkbook.from_path(str(path)))
        names = [m.name for m in workbook.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
    except Exception as exc:  # calamine raises many types for a broken workbook
        raise ImportFailure("INVALID_FILE", f"the workbook cannot be read: {type(exc).__name__}") from None
    if sheet and sheet not in names:
        raise ImportFailure("SHEET_NOT_FOUND", f"no sheet named {sheet!r}; the workbook has {', '.join(names)}")
    if not names:
        raise ImportFailure("EMPTY_FILE", "the workbook has no worksheet")
    name = sheet or names[0]
    marks = _MarksScan(path, name)  # reads the sheet's XML while calamine, without the GIL, loads it
    try:
        worksheet = workbook.get_sheet_by_name(name)
    except Exception as exc:
        raise _corrupt(type(exc).__name__) from None
    except BaseException as exc:  # a panic in calamine's Rust code (pyo3's PanicException) is no Exception
        if type(exc).__name__ != "PanicException":
            raise
        raise _corrupt("a cell calamine cannot read") from None
    finally:
        marks.join()
    return _CalamineSource(worksheet, marks)


class _MarksScan(threading.Thread):
    """The marks of a sheet (see _marked_cells), found on a thread of their own: the scan of the
    XML overlaps calamine's load of the sheet instead of following it."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__(name="xlsx-marks", daemon=True)
        self.path, self.sheet = path, name
        self.marks: list[tuple[int, dict[int, Any]]] = []
        self.error: BaseException | None = None  # raised where the marks are asked for
        self.start()

    def run(self) -> None:
        try:
            with ExitStack() as resources:
                found = _marks(self.path, self.sheet, resources)
                self.marks = [] if found is None else list(found)
        except _BROKEN as exc:
            self.error = _corrupt(type(exc).__name__)
        except BaseException as exc:  # noqa: BLE001 - an ImportFailure, or anything else: never lost
            self.error = exc

    def result(self) -> list[tuple[int, dict[int, Any]]]:
        self.join()
        if self.error is not None:
            raise self.error
        return self.marks


class _CalamineSource:
    """A loaded sheet: calling it gives its rows (again and again); count() counts them."""

    def __init__(self, worksheet: Any, marks: _MarksScan) -> None:
        self.worksheet, self._marks = worksheet, marks

    def __call__(self) -> Iterator[tuple[int, list[Any]]]:
        marks = self._marks.result()
        return _with_marks(_calamine_rows(self.worksheet), iter(marks)) if marks else _calamine_rows(self.worksheet)

    def count(self) -> int:
        """How many rows the reading gives after the header (see xlsx_rows). Where no cell needs
        the sheet's XML (no mark, the common case), they are counted on calamine's own cells,
        without turning every row into the import's types, which took as long as reading them."""
        marks = self._marks.result()
        try:
            if marks:
                again = _with_marks(_calamine_rows(self.worksheet), iter(marks))
                next(again, None)  # the header
                return sum(1 for _ in _data(again))
            if self.worksheet.start is None:
                return 0
            rows = _unpanicked(self.worksheet.iter_rows())
            next(rows, None)  # row 1, the header
            # An empty cell is "" and a blank row holds nothing else, or text of spaces; any other
            # value (a number, a date, a boolean, an error) fills the row, as in _data(). Most rows
            # are settled by their first cell; the others are looked at whole.
            return sum(1 for row in rows if row and ((first := row[0]).__class__ is not str or first.strip() or any(
                cell.__class__ is not str or cell.strip() for cell in row)))
        except _BROKEN as exc:
            raise _corrupt(type(exc).__name__) from None


def _calamine_rows(worksheet: Any) -> Iterator[tuple[int, list[Any]]]:
    """Every row from the sheet's row 1 to its last (iter_rows() gives the rows above the first
    value too), cells from column A, in the types the import has always seen: empty cells None,
    whole numbers int, dates datetime."""
    if worksheet.start is None:
        return
    padding: list[Any] = [None] * worksheet.start[1]
    line = 0
    for row in _unpanicked(worksheet.iter_rows()):
        line += 1
        # Text (most cells) as it is; everything else through _cell(). One comprehension per
        # row: this runs for every row of the sheet, on the reading thread.
        values = [v if v.__class__ is str and v else _cell(v) for v in row]
        yield line, (padding + values if padding else values)


def _cell(v: Any) -> Any:
    """A calamine cell that is not text, or empty text, in the import's types."""
    cls = v.__class__
    if cls is str:
        return None  # "": an empty cell
    if cls is float:
        return int(v) if v.is_integer() and -_WHOLE < v < _WHOLE else v
    if cls is date:
        return datetime(v.year, v.month, v.day)
    return v


def _unpanicked(rows: Iterator[list[Any]]) -> Iterator[list[Any]]:
    """calamine's rows, with a panic of its Rust code (pyo3's PanicException, a BaseException that
    `except Exception` misses and that would end the worker's task) reported as a corrupt file."""
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except BaseException as exc:
            if type(exc).__name__ != "PanicException":
                raise
            raise _corrupt("a cell calamine cannot read") from None
        yield row


def _with_marks(rows: Iterator[tuple[int, list[Any]]],
                marks: Iterator[tuple[int, dict[int, Any]]]) -> Iterator[tuple[int, list[Any]]]:
    """rows with the cells calamine reads as empty that the sheet's XML says are not."""
    mark = next(marks, None)
    for line, values in rows:
        while mark is not None and mark[0] < line:  # a row calamine did not see at all
            yield mark[0], _marked([], mark[1])
            mark = next(marks, None)
        if mark is not None and mark[0] == line:
            values = _marked(values, mark[1])
            mark = next(marks, None)
        yield line, values
    while mark is not None:
        yield mark[0], _marked([], mark[1])
        mark = next(marks, None)


def _marked(values: list[Any], cells: dict[int, Any]) -> list[Any]:
    width = max(cells) + 1
    if len(values) < width:
        values = values + [None] * (width - len(values))
    for column, value in cells.items():
        values[column] = value
    return values


# --- the workbook's parts ----------------------------------------------------------------------


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """A part's relationship ids -> (the zip member each points at, its type)."""
    folder, name = posixpath.split(part)
    rels = ET.fromstring(archive.read(posixpath.join(folder, "_rels", name + ".rels")))
    targets = {}
    for rel in rels:
        target = rel.get("Target", "")
        targets[rel.get("Id", "")] = (target.lstrip("/") if target.startswith("/")
                                      else posixpath.normpath(posixpath.join(folder, target)), rel.get("Type", ""))
    return targets


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _workbook(archive: zipfile.ZipFile) -> tuple[dict[str, str], bool]:
    """The worksheets' names -> their zip members (sheet order), and whether dates count from 1904."""
    package = _relationships(archive, "")
    part = next((target for target, kind in package.values() if kind.endswith("/officeDocument")), "xl/workbook.xml")
    targets = _relationships(archive, part)
    sheets, is_1904 = {}, False
    for element in ET.fromstring(archive.read(part)).iter():
        tag = _local(element.tag)
        if tag == "sheet":
            rid = next((v for k, v in element.attrib.items() if _local(k) == "id"), "")
            target, kind = targets.get(rid, ("", ""))
            if kind.endswith("/worksheet"):
                sheets.setdefault(element.get("name", ""), target)
        elif tag == "workbookPr":
            is_1904 = element.get("date1904") in ("1", "true")
    return sheets, is_1904


def _member(archive: zipfile.ZipFile, name: str) -> str | None:
    """The zip member called name, in any case (as calamine finds xl/styles.xml)."""
    lower = name.lower()
    return next((n for n in archive.namelist() if n.lower() == lower), None)


# --- formula cells without a value, and error cells ---------------------------------------------


class _Formulas:
    """What a formula or error cell is beyond calamine's reading: an error's text, or for a
    formula saved without a value a FormulaWithoutValue. A shared formula's other cells are given
    the group's formula shifted to them (the group's first cell holds its text)."""

    def __init__(self) -> None:
        self.shared: dict[str, tuple[str, str]] = {}  # shared formula group -> (formula, its first cell)

    def mark(self, kind: str | None, formula: dict[str, str] | None, text: str, value: str | None,
             row: int, column: int) -> Any:
        """The cell's value, or None when calamine's reading stands. `value` is its <v> text
        (None without one); an empty <v> of a text formula (t="str") is a formula whose result is ""."""
        shared = formula is not None and formula.get("t") == "shared"
        if shared and text:
            self.shared.setdefault(formula.get("si", ""), (text, _cell_name(row, column)))
        if kind == "e" and value:
            return value
        if formula is not None and (value is None or (not value and kind != "str")):
            if text:
                return FormulaWithoutValue("=" + text)
            group = self.shared.get(formula.get("si", "")) if shared else None
            if group is None:
                return FormulaWithoutValue("(shared formula)" if shared else "(formula)")
            return FormulaWithoutValue(_shared_formula(group[0], group[1], _cell_name(row, column)))
        return None


def _shared_formula(text: str, origin: str, cell: str) -> str:
    from openpyxl.formula.translate import Translator

    try:
        return Translator("=" + text, origin=origin).translate_formula(cell)
    except Exception:  # a formula the translator cannot shift: show the group's own text
        return f"={text} (shared from {origin})"


def _column(letters: str) -> int:
    """'AB' -> 27."""
    column = 0
    for char in letters.lstrip("$").upper():
        column = column * 26 + ord(char) - 64
    return column - 1


def _cell_name(row: int, column: int) -> str:
    """(12, 27) -> 'AB12'."""
    letters, column = "", column + 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row}"


# For calamine the XML is searched a stretch of whole rows at a time; only where it holds a
# formula or an error cell are those cells cut out and parsed, so a sheet with neither costs one
# search, and one with formulas that have values little more.
_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?worksheet[\s>]")


def _marks(path: Path, sheet: str, resources: ExitStack) -> Iterator[tuple[int, dict[int, Any]]] | None:
    try:
        archive = resources.enter_context(zipfile.ZipFile(path))
        part = _workbook(archive)[0].get(sheet)
        if part is None:
            return None
        stream = resources.enter_context(archive.open(part))
    except _BROKEN as exc:
        raise _corrupt(type(exc).__name__) from None
    return _marked_cells(stream)


class _Tags:
    """The byte strings the searches look for, with the sheet's namespace prefix (<x:c>), if any."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self.row_start, self.row_end = b"<" + prefix + b"row", b"</" + prefix + b"row>"
        self.cell_start, self.cell_end = b"<" + prefix + b"c ", b"</" + prefix + b"c>"
        self.unreferenced = re.compile(re.escape(b"<" + prefix + b"c") + rb'(?:[>/]|\s(?!r="))')
        self.referenced = b"<" + prefix + b'c r="'
        self.value, self.empty_value = b"<" + prefix + b"v>", b"<" + prefix + b"v></" + prefix + b"v>"
        self.value_start, self.inline = b"<" + prefix + b"v", b"<" + prefix + b"is"
        self.markers = (b"<" + prefix + b"f>", b"<" + prefix + b"f ", b't="e"')


def _regions(stream: IO[bytes]) -> Iterator[tuple[_Tags, bytes]]:
    """The sheet's XML in stretches of whole rows (the first one from the sheet's start)."""
    tags: _Tags | None = None
    pending = b""
    while block := stream.read(1 << 20):
        data = pending + block
        if tags is None:
            root = _ROOT.search(data)
            tags = _Tags(root[1] + b":" if root and root[1] else b"")
        cut = data.rfind(tags.row_end)
        if cut < 0:
            pending = data
            continue
        cut += len(tags.row_end)
        pending = data[cut:]
        yield tags, data[:cut]


def _marked_cells(stream: IO[bytes]) -> Iterator[tuple[int, dict[int, Any]]]:
    """(row, {column index: value}) for each row holding a formula without a cached value
    (a FormulaWithoutValue) or an error value (its text, '#N/A'), in sheet order."""
    scan: _CellScan | None = None
    rows_before = 0
    for tags, region in _regions(stream):
        scan = scan or _CellScan(tags.prefix.decode())
        if any(marker in region for marker in tags.markers):
            try:
                scan.parse(_cells_to_parse(region, tags), rows_before)
            except expat.ExpatError:  # cells that were not what they looked like: parse all the rows
                scan.marks = {}
                scan.parse(region[region.find(tags.row_start):], rows_before)
            yield from sorted(scan.marks.items())
            scan.marks = {}
        rows_before += region.count(tags.row_start)  # for rows that do not say their number


def _cells_to_parse(region: bytes, tags: _Tags) -> bytes:
    """The cells of region (whole rows of sheet XML) that may be marked, or shared formulas
    others refer to; all its rows when a cell cannot be cut out on its own."""
    cells, hits = [], [region.find(marker) for marker in tags.markers]
    while (hit := min((h for h in hits if h >= 0), default=-1)) >= 0:
        start, end = region.rfind(tags.cell_start, 0, hit), region.find(tags.cell_end, hit)
        cell = region[start:end + len(tags.cell_end)]
        if start < 0 or end < 0 or tags.row_end in cell or b' r="' not in cell[:cell.find(b">")]:
            return region[region.find(tags.row_start):]
        if (b't="e"' in cell or b'ref="' in cell
                or tags.value not in cell or tags.empty_value in cell):
            cells.append(cell)
        end += len(tags.cell_end)
        hits = [region.find(marker, end) if 0 <= h < end else h for h, marker in zip(hits, tags.markers, strict=True)]
    return b"".join(cells)


class _CellScan:
    """expat handlers over cells (or whole rows) of a worksheet's XML: collects, per row, the
    formulas without a cached value and the error values."""

    def __init__(self, prefix: str) -> None:
        self.marks: dict[int, dict[int, Any]] = {}
        self.formulas = _Formulas()
        self.tags = tuple(prefix + name for name in ("row", "c", "f", "v"))
        self.row = self.column = 0
        self.kind = self.formula = self.formula_text = self.value = None
        self.text: list[str] | None = None

    def parse(self, xml: bytes, rows_before: int) -> None:
        parser = expat.ParserCreate("utf-8")  # no namespace processing: tags keep their prefix, if any
        parser.buffer_text = True
        parser.StartElementHandler, parser.EndElementHandler = self.start, self.end
        parser.CharacterDataHandler = self.data
        self.row, self.column = rows_before, -1
        parser.Parse(b"<cells>" + xml + b"</cells>", True)

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        row, cell, formula, value = self.tags
        if tag == cell:
            ref = attrib.get("r")
            if ref:  # 'AB12': row 12, column index 27
                letters = ref.rstrip("0123456789")
                self.row, self.column = int(ref[len(letters):]), _column(letters)
            else:
                self.column += 1
            self.kind, self.formula, self.value = attrib.get("t"), None, None
        elif tag == formula:
            self.formula, self.text = attrib, []
        elif tag == value:
            self.text = []
        elif tag == row:
            r = attrib.get("r")
            self.row, self.column = int(r) if r else self.row + 1, -1

    def data(self, text: str) -> None:
        if self.text is not None:
            self.text.append(text)

    def end(self, tag: str) -> None:
        _, cell, formula, value = self.tags
        if tag == cell:
            if self.formula is not None or self.kind == "e":
                mark = self.formulas.mark(self.kind, self.formula, self.formula_text or "", self.value,
                                          self.row, self.column)
                if mark is not None:
                    self.marks.setdefault(self.row, {})[self.column] = mark
        elif tag == formula:
            self.formula_text, self.text = "".join(self.text or ()), None
        elif tag == value:
            self.value, self.text = "".join(self.text or ()), None
