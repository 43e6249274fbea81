"""Readers for import files: CSV (encoding, delimiter and decimal comma detected) read with
pandas' C parser in chunks, and XLSX read with calamine.

A reader yields (line, values): `line` is the row number a person sees in the file (the header
is line 1; for CSV the physical line where the record starts), `values` the raw cells. Blank
rows are skipped the same way on every read, so a checkpoint (a count of yielded rows) always
points at the same row on resume.

A CSV is never held in memory as a whole. Calamine holds one worksheet's cells while it is read,
and converts each row to Python only when it is asked for.
"""

from __future__ import annotations

import codecs
import csv
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar
from xml.parsers import expat

from django.conf import settings

from core.imports.models import Dialect

_SAMPLE_BYTES = 256 * 1024
_DECIMAL_COMMA = re.compile(r"^-?(\d{1,3}(\.\d{3})+|\d+),\d+$")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHUNK_ROWS = 5000
_MAX_CELL = csv.field_size_limit()  # 131,072 characters
_UNTERMINATED = re.compile(r"EOF inside string starting at row (\d+)")


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


def _decodes_as(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8", "cp1252"):
        if _decodes_as(path, encoding):
            return encoding
    return "latin-1"  # decodes any byte sequence


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def sniff_csv(path: Path) -> Dialect:
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, newline="", errors="replace") as f:
        sample = f.read(_SAMPLE_BYTES)
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines:
        raise ImportFailure("EMPTY_FILE", "the file is empty")
    header = lines[0]
    delimiter = max((",", ";", "\t"), key=lambda d: _count_outside_quotes(header, d))
    decimal_comma = False
    if delimiter != ",":
        # Decimal commas are only possible when the comma is not the delimiter; decide from
        # the numbers in the sample (German, French, ... Excel exports use ';' and '1.234,56').
        for row in csv.reader(lines[1:200], delimiter=delimiter):
            if any(_DECIMAL_COMMA.match(value.strip()) for value in row):
                decimal_comma = True
                break
    return Dialect(encoding=encoding, delimiter=delimiter, decimal_comma=decimal_comma)


def check_size(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        raise ImportFailure("EMPTY_FILE", "the file is empty")
    if size > settings.IMPORT_MAX_FILE_BYTES:
        raise ImportFailure("FILE_TOO_LARGE", f"the file is larger than {settings.IMPORT_MAX_FILE_BYTES} bytes")


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


def _header_text(value: Any) -> str:
    return ("" if value is None else str(value)).strip().lstrip("\ufeff")


def clean_header(values: list[Any]) -> list[str]:
    """Header cells as column names: stripped, lowercase, whitespace runs as '_'."""
    return [re.sub(r"\s+", "_", _header_text(v).lower()) for v in values]


@contextmanager
def open_rows(path: Path, fmt: str, dialect: Dialect | None, sheet: str = "", *, raw_header: bool = False):
    """Yield (header, rows) where rows iterates (line, values). The header is clean_header()'s
    column names, or with raw_header the header cells as text (stripped, without a BOM)."""
    check_size(path)
    with ExitStack() as resources:
        if fmt == "xlsx":
            header, rows = _xlsx_rows(path, sheet, resources)
        else:
            header, rows = _csv_rows(path, dialect or sniff_csv(path), resources)
        if not any(v not in (None, "") and str(v).strip() for v in header):
            raise ImportFailure("EMPTY_FILE", "the sheet has no header row" if fmt == "xlsx"
                                else "the file has no header row")
        yield ([_header_text(v) for v in header] if raw_header else clean_header(header)), rows


# --- CSV ---------------------------------------------------------------------------------------


def _line_breaks(text: str) -> int:
    """Line ends in text as a file read with newline='' counts them: \\r\\n, \\n or \\r."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def _undecodable_line(path: Path, encoding: str) -> int | None:
    """The line holding the first byte that does not decode, None when all of it decodes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, after_cr = 1, False
    with path.open("rb") as f:
        while True:
            block = f.read(1 << 20)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                text = exc.object[:exc.start].decode(encoding, errors="replace")
                return line + _line_breaks(text) - (after_cr and text.startswith("\n"))
            line += _line_breaks(text) - (after_cr and text.startswith("\n"))
            after_cr = text.endswith("\r") if text else after_cr
            if not block:
                return None


def _decode_failure(path: Path, dialect: Dialect, near: int, exc: UnicodeDecodeError) -> ImportFailure:
    line = _undecodable_line(path, dialect.encoding) or near
    return ImportFailure("INVALID_FILE", f"line {line}: bytes that are not {dialect.encoding} text ({exc.reason})")


def _unterminated(line: int) -> ImportFailure:
    return ImportFailure("INVALID_FILE", f"line {line}: a quoted cell that starts on this line is never closed "
                                         f"(a '\"' is missing)")


def _read_csv(path: Path, dialect: Dialect, **options: Any):
    import pandas as pd

    # Every cell is text, exactly as written: no type inference and no NaN markers; blank lines
    # are kept so that line numbers can be counted.
    return pd.read_csv(path, engine="c", header=None, dtype=str, keep_default_na=False, na_filter=False,
                       skip_blank_lines=False, quotechar='"', sep=dialect.delimiter, encoding=dialect.encoding,
                       index_col=False, **options)


def _csv_rows(path: Path, dialect: Dialect, resources: ExitStack) -> tuple[list[str], Iterator]:
    from pandas.errors import EmptyDataError, ParserError

    try:
        first = _read_csv(path, dialect, nrows=1)
    except EmptyDataError:
        return [], iter(())
    except UnicodeDecodeError as exc:
        raise _decode_failure(path, dialect, 1, exc) from None
    except ParserError as exc:
        if _UNTERMINATED.search(str(exc)):
            raise _unterminated(1) from None
        raise ImportFailure("INVALID_FILE", f"line 1: {exc}") from None
    header = first.iloc[0].tolist() if len(first) else []
    return header, _csv_records(path, dialect, len(header), resources)


def _csv_records(path: Path, dialect: Dialect, width: int, resources: ExitStack) -> Iterator[tuple[int, list[str]]]:
    """The data rows, read in chunks by pandas. A chunk pandas refuses (a row with more cells
    than the header, an unclosed quote) and everything after it is read with the csv module,
    which yields such rows as they are and says where a file is broken."""
    from pandas.errors import ParserError

    chunks = resources.enter_context(_read_csv(path, dialect, names=range(width), chunksize=_CHUNK_ROWS))
    line, record = 1, 0  # where the next record starts, and its index (the header is record 0)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise _decode_failure(path, dialect, line, exc) from None
        except ParserError as exc:
            unterminated = _UNTERMINATED.search(str(exc))
            yield from _csv_module_records(path, dialect, width, line, record, resources,
                                           int(unterminated[1]) if unterminated else None)
            return
        rows = chunk.to_numpy(dtype=object).tolist()
        texts = list(map("".join, rows))  # a row is blank when its text is
        joined = "".join(texts)
        # A cell over several lines has them counted; a cell this long is a quote gone wrong far
        # more often than data, and fails the file.
        if "\n" in joined or "\r" in joined or max(map(len, texts), default=0) > _MAX_CELL:
            for values, text in zip(rows, texts, strict=True):
                if any(len(v) > _MAX_CELL for v in values):
                    raise ImportFailure("INVALID_FILE", f"line {line}: a cell is longer than {_MAX_CELL} characters")
                if record and text and not text.isspace():
                    yield line, values
                line += 1 + _line_breaks(",".join(values))
                record += 1
            continue
        # No cell spans lines: each record is one line.
        for number, values, text in zip(range(line, line + len(rows)), rows, texts, strict=True):
            if text and not text.isspace() and (record or number > line):
                yield number, values
        line += len(rows)
        record += len(rows)


def _csv_module_records(path: Path, dialect: Dialect, width: int, line: int, record: int, resources: ExitStack,
                        unterminated: int | None) -> Iterator[tuple[int, list[str]]]:
    """Records from `line` (record index `record`) to the end, read with the csv module; rows
    shorter than the header are padded as pandas pads them."""
    f = resources.enter_context(path.open(encoding=dialect.encoding, newline=""))
    try:
        for _ in range(line - 1):
            f.readline()
    except UnicodeDecodeError as exc:
        raise _decode_failure(path, dialect, line, exc) from None
    reader = csv.reader(f, delimiter=dialect.delimiter)
    base, last = line - 1, 0
    while True:
        start = base + last + 1
        if record == unterminated:
            raise _unterminated(start)
        try:
            values = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise _decode_failure(path, dialect, start, exc) from None
        except csv.Error as exc:
            raise ImportFailure("INVALID_FILE", f"line {start}: {exc}") from None
        last = reader.line_num
        if record and values and (values[0].strip() or any(v.strip() for v in values)):
            yield start, values + [""] * (width - len(values))
        record += 1


# --- XLSX --------------------------------------------------------------------------------------

# Numbers calamine reads as floats; a whole one is an int, as Excel shows it (1001, not 1001.0),
# below 10**15 where Excel itself still writes every digit.
_WHOLE = 10**15


def _xlsx_rows(path: Path, sheet: str, resources: ExitStack) -> tuple[list[Any], Iterator]:
    from python_calamine import CalamineWorkbook, SheetTypeEnum

    check_xlsx(path)
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
    try:
        worksheet = workbook.get_sheet_by_name(name)
    except Exception as exc:
        raise ImportFailure("INVALID_FILE", f"the workbook is corrupt: {type(exc).__name__}") from None
    rows = _calamine_rows(worksheet)
    marks = _marks(path, name, resources)
    if marks is not None:
        rows = _with_marks(rows, marks)
    try:
        line, header = next(rows, (1, []))
    except _BROKEN as exc:
        raise ImportFailure("INVALID_FILE", f"the workbook is corrupt: {type(exc).__name__}") from None
    return (header if line == 1 else []), _xlsx_data(rows)


_BROKEN = (zipfile.BadZipFile, zlib.error, ET.ParseError, expat.ExpatError, KeyError, ValueError, OSError, EOFError)


def _xlsx_data(rows: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[int, list[Any]]]:
    try:
        for line, values in rows:
            if any(v is not None and (v.__class__ is not str or v.strip()) for v in values):
                yield line, values
    except _BROKEN as exc:
        raise ImportFailure("INVALID_FILE", f"the workbook is corrupt: {type(exc).__name__}") from None


def _calamine_rows(worksheet: Any) -> Iterator[tuple[int, list[Any]]]:
    """Every row from the sheet's row 1 to its last, cells from column A, in the types the
    import has always seen: empty cells None, whole numbers int, dates datetime."""
    if worksheet.start is None:
        return
    first_row, first_col = worksheet.start
    for line in range(1, first_row + 1):
        yield line, []
    line = first_row
    for row in worksheet.iter_rows():
        line += 1
        values: list[Any] = [None] * first_col
        append = values.append
        for v in row:
            cls = v.__class__
            if cls is str:
                append(v or None)
            elif cls is float:
                append(int(v) if v.is_integer() and -_WHOLE < v < _WHOLE else v)
            elif cls is date:
                append(datetime(v.year, v.month, v.day))
            else:
                append(v)
        yield line, values


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


# Calamine reads a formula without a cached value, and an error value (#N/A, #DIV/0!), as an
# empty cell; the sheet's XML says what they are. The XML is searched a stretch of whole rows at
# a time; only where it holds a formula or an error cell are those cells cut out and parsed, so
# a sheet with neither costs one search, and one with formulas that have values little more.
_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?worksheet[\s>]")


def _marks(path: Path, sheet: str, resources: ExitStack) -> Iterator[tuple[int, dict[int, Any]]] | None:
    try:
        archive = resources.enter_context(zipfile.ZipFile(path))
        part = _sheet_part(archive, sheet)
        if part is None:
            return None
        stream = resources.enter_context(archive.open(part))
    except _BROKEN as exc:
        raise ImportFailure("INVALID_FILE", f"the workbook is corrupt: {type(exc).__name__}") from None
    return _marked_cells(stream)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, str]:
    """A part's relationship ids -> the zip member each points at."""
    folder, name = posixpath.split(part)
    rels = ET.fromstring(archive.read(posixpath.join(folder, "_rels", name + ".rels")))
    targets = {}
    for rel in rels:
        target = rel.get("Target", "")
        targets[rel.get("Id", "")] = (target.lstrip("/") if target.startswith("/")
                                      else posixpath.normpath(posixpath.join(folder, target)))
    return targets


def _sheet_part(archive: zipfile.ZipFile, sheet: str) -> str | None:
    """The zip member holding the named worksheet's XML (xl/worksheets/sheet1.xml)."""
    workbook = _relationships(archive, "").get(next(
        (rel.get("Id", "") for rel in ET.fromstring(archive.read("_rels/.rels"))
         if rel.get("Type", "").endswith("/officeDocument")), ""), "xl/workbook.xml")
    targets = _relationships(archive, workbook)
    for element in ET.fromstring(archive.read(workbook)).iter():
        if _local(element.tag) == "sheet" and element.get("name") == sheet:
            rid = next((v for k, v in element.attrib.items() if _local(k) == "id"), "")
            return targets.get(rid)
    return None


class _Tags:
    """The byte strings the search looks for, with the sheet's namespace prefix (<x:c>), if any."""

    def __init__(self, prefix: bytes) -> None:
        self.row_start, self.row_end = b"<" + prefix + b"row", b"</" + prefix + b"row>"
        self.cell_start, self.cell_end = b"<" + prefix + b"c ", b"</" + prefix + b"c>"
        self.value, self.empty_value = b"<" + prefix + b"v>", b"<" + prefix + b"v></" + prefix + b"v>"
        self.markers = (b"<" + prefix + b"f>", b"<" + prefix + b"f ", b't="e"')


def _marked_cells(stream) -> Iterator[tuple[int, dict[int, Any]]]:
    """(row, {column index: value}) for each row holding a formula without a cached value
    (a FormulaWithoutValue) or an error value (its text, '#N/A'), in sheet order."""
    tags: _Tags | None = None
    pending, rows_before = b"", 0
    while block := stream.read(1 << 20):
        data = pending + block
        if tags is None:
            root = _ROOT.search(data)
            prefix = root[1].decode() + ":" if root and root[1] else ""
            tags, scan = _Tags(prefix.encode()), _CellScan(prefix)
        cut = data.rfind(tags.row_end)
        if cut < 0:
            pending = data
            continue
        cut += len(tags.row_end)
        region, pending = data[:cut], data[cut:]
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
        self.shared: dict[str, tuple[str, str]] = {}  # shared formula group -> (formula, its first cell)
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
            self._cell()
        elif tag == formula:
            self.formula_text, self.text = "".join(self.text or ()), None
        elif tag == value:
            self.value, self.text = "".join(self.text or ()), None

    def _cell(self) -> None:
        formula, value, kind = self.formula, self.value, self.kind
        if formula is None and not (kind == "e" and value):
            return
        column = self.column
        name = _cell_name(self.row, column)
        if formula is not None and formula.get("t") == "shared" and self.formula_text:
            self.shared.setdefault(formula.get("si", ""), (self.formula_text, name))
        if kind == "e" and value:
            self.marks.setdefault(self.row, {})[column] = value
        elif formula is not None and (value is None or (not value and kind != "str")):
            # An empty <v> of a text formula (t="str") is a formula whose result is "".
            self.marks.setdefault(self.row, {})[column] = FormulaWithoutValue(self._formula(formula, name))

    def _formula(self, formula: dict[str, str], name: str) -> str:
        if self.formula_text:
            return "=" + self.formula_text
        group = self.shared.get(formula.get("si", "")) if formula.get("t") == "shared" else None
        if group is None:
            return "(shared formula)" if formula.get("t") == "shared" else "(formula)"
        return _shared_formula(group[0], group[1], name)


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
