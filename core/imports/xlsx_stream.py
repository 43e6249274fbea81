"""A sheet streamed in bounded memory, for sheets whose XML is larger than
IMPORT_XLSX_STREAM_BYTES (core.imports.xlsx reads smaller ones with calamine).

expat parses the sheet's XML in blocks and each row is given as soon as it is complete; only the
table of shared strings is held. Cells are read as calamine 0.37 reads them (its number parsing,
date formats, padding of rows to the sheet's width), so which reader read a file never shows.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import IO, Any
from xml.parsers import expat

from django.conf import settings

from core.imports.xlsx import (
    _BLOCK,
    _BROKEN,
    _ROOT,
    _WHOLE,
    _cell_name,
    _column,
    _corrupt,
    _Formulas,
    _local,
    _member,
    _regions,
    _Tags,
    _workbook,
)

_DATETIME, _DURATION = 1, 2
# Built-in number formats calamine reads as dates and times (the ids a workbook need not define).
_BUILTIN = {str(i): _DATETIME for i in (*range(14, 23), *range(27, 37), 45, 47, *range(50, 59))} | {"46": _DURATION}
_BOOLEANS = {"1": True, "true": True, "0": False, "false": False, "": None}
_ERRORS = frozenset(("#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!"))
_XML_SPACE = " \t\r\n"
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_EPOCH = datetime(1899, 12, 30)
_DAY_MS = 86_400_000


def streamed_rows(path: Path, sheet: str, resources: ExitStack) -> Callable[[], Iterator[tuple[int, list[Any]]]] | None:
    """A function that streams the sheet's rows (each call from the start, with the shared
    strings read once) when its XML is larger than IMPORT_XLSX_STREAM_BYTES; None to leave the
    workbook to calamine (which also reports a missing sheet or a broken workbook)."""
    with ExitStack() as opened:
        try:
            archive = opened.enter_context(zipfile.ZipFile(path))
            sheets, is_1904 = _workbook(archive)
            part = sheets.get(sheet) if sheet else next(iter(sheets.values()), None)
            if part is None or archive.getinfo(part).file_size <= settings.IMPORT_XLSX_STREAM_BYTES:
                return None
            book = _Book(_shared_strings(archive), _cell_formats(archive), is_1904)
        except _BROKEN:
            return None
        resources.enter_context(opened.pop_all())
    return lambda: _sheet_rows(lambda: archive.open(part), book)


@dataclass(frozen=True, slots=True)
class _Book:
    strings: list[str]
    formats: _Formats
    is_1904: bool


class _Formats(dict):
    """A cell's style (its s attribute) -> _DATETIME, _DURATION or 0, as calamine reads styles:
    digits only, anything else is style 0."""

    def __init__(self, kinds: list[int]) -> None:
        super().__init__()
        self.kinds = kinds

    def __missing__(self, style: str) -> int:
        index = int(style) if style.isascii() and style.isdigit() else 0
        kind = self[style] = self.kinds[index] if index < len(self.kinds) else 0
        return kind


def _cell_formats(archive: zipfile.ZipFile) -> _Formats:
    name = _member(archive, "xl/styles.xml")
    if name is None:
        return _Formats([])
    root = ET.fromstring(archive.read(name))
    custom = {e.get("numFmtId"): e.get("formatCode") for e in root.iter() if _local(e.tag) == "numFmt"
              and e.get("formatCode")}
    kinds = []
    for xfs in (e for e in root.iter() if _local(e.tag) == "cellXfs"):
        for xf in (e for e in xfs if _local(e.tag) == "xf"):
            fmt = xf.get("numFmtId")
            kinds.append(0 if fmt is None else _format_kind(custom[fmt]) if fmt in custom else _BUILTIN.get(fmt, 0))
    return _Formats(kinds)


def _format_kind(code: str) -> int:
    """Whether a number format shows dates or times ([h]:mm, a duration), read as calamine reads
    it: its first section, outside quotes, escapes and [brackets]."""
    escaped = quoted = ap = hms = False
    brackets, prev = 0, " "
    for char in code:
        if escaped:
            escaped = False
        elif char in "_\\*":  # the next character is a literal (or a width, or a fill)
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == ";":
            return 0
        elif char == "[":
            brackets += 1
        elif char == "]" and brackets == 1 and hms:
            return _DURATION
        elif char == "]":
            brackets = max(0, brackets - 1)
        elif brackets == 0 and char in "aA" and not ap:
            ap = True
        elif brackets == 0 and (char in "pm/PM" if ap else char in "dmhysDMHYS"):
            return _DATETIME
        elif not (hms and char.lower() == prev.lower()):
            hms = prev == "[" and char in "mhsMHS"
        prev = char
    return 0


def _shared_strings(archive: zipfile.ZipFile) -> list[str]:
    """The workbook's table of shared strings: each one's text runs (stripped of spaces and line
    ends unless xml:space="preserve" says to keep them), without phonetic guides."""
    strings: list[str] = []
    name = _member(archive, "xl/sharedStrings.xml")
    if name is None:
        return strings
    texts: list[str] = []
    parts: list[str] = []
    phonetic = preserve = False

    def start(tag: str, attrib: dict[str, str]) -> None:
        nonlocal phonetic, preserve
        tag = tag.rpartition(":")[2]
        if tag == "t":
            parts.clear()
            preserve = attrib.get("xml:space") == "preserve"
        elif tag == "si":
            texts.clear()
        elif tag == "rPh":
            phonetic = True

    def end(tag: str) -> None:
        nonlocal phonetic
        tag = tag.rpartition(":")[2]
        if tag == "t" and not phonetic:
            texts.append("".join(parts) if preserve else "".join(parts).strip(_XML_SPACE))
        elif tag == "si":
            strings.append(_unescape("".join(texts)))
        elif tag == "rPh":
            phonetic = False

    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, parts.append
    with archive.open(name) as stream:
        parser.ParseFile(stream)
    return strings


def _unescape(text: str) -> str:
    """Text with its _xHHHH_ escapes (how XML writes a carriage return: _x000D_) as characters."""
    return _ESCAPE.sub(_escaped, text) if "_x" in text else text


def _escaped(match: re.Match[str]) -> str:
    code = int(match[1], 16)
    return match[0] if 0xD800 <= code <= 0xDFFF else chr(code)


def _number(text: str) -> float | None:
    """text as a number the way calamine (Rust) parses one: no spaces around it, no '_'."""
    if text.isascii() and "_" not in text and " " < text[0] and " " < text[-1]:
        try:
            return float(text)
        except ValueError:
            pass
    return None


def _plain(number: float) -> int | float:
    return int(number) if number.is_integer() and -_WHOLE < number < _WHOLE else number


def _round(x: float) -> int:
    """x rounded half away from zero, as Rust rounds."""
    if x < 0:
        return -_round(-x)
    whole = math.floor(x)
    return whole + (x - whole >= 0.5)


def _excel_datetime(number: float, is_1904: bool) -> Any:
    """A date-formatted number as calamine gives it, to the millisecond: below 1.0 a time of
    day, from 1.0 a datetime; a number beyond the year 9999 stays a number."""
    days = number + 1462 if is_1904 else number
    if days < 60:
        days += 1  # before Excel's 1900-02-29, which never was
    try:
        ms = _round(days * _DAY_MS)
        if number < 1.0:
            ms %= _DAY_MS
            return time(ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000 * 1000)
        return _EPOCH + timedelta(milliseconds=ms)
    except (OverflowError, ValueError):  # beyond datetime, or not finite
        return _plain(number)


def _excel_duration(number: float) -> Any:
    try:
        return timedelta(milliseconds=_round(number * _DAY_MS))
    except (OverflowError, ValueError):
        return _plain(number)


_ISO = re.compile(r"\s*\+?(?:(\d{4})-(\d\d?)-(\d\d?))?(T)?(?:(\d\d?):(\d\d?)(?::(\d\d?)(?:\.(\d{1,9}))?)?)?")


def _iso(text: str) -> Any:
    """A t="d" cell's ISO 8601 text as calamine reads it: a datetime, date or time; as text
    when it is none of them."""
    match = _ISO.fullmatch(text)
    if match is None or not match[0].strip():
        return text
    year, month, day, t, hour, minute, second, fraction = match.groups()
    if bool(t) != bool(year and hour) or (year and hour and second is None):
        return text
    clock = (int(hour), int(minute), int(second or 0), int((fraction or "0")[:6].ljust(6, "0"))) if hour else ()
    try:
        if year is None:
            return time(*clock)
        day_ = datetime(int(year), int(month), int(day), *clock)
    except ValueError:
        return text
    return day_ if hour else datetime(day_.year, day_.month, day_.day)


class _Columns(dict):
    """A reference's letters -> the column index ('AB' -> 27)."""

    def __missing__(self, letters: str) -> int:
        if not (letters.isascii() and letters.isalpha()):
            raise _corrupt(f"a cell reference with the column {letters!r}")
        column = self[letters] = _column(letters)
        return column


_COLUMNS = _Columns()
_NAMES = [_cell_name(1, column)[:-1] for column in range(1024)]  # the letters of the first columns
_NOWHERE = "\0"  # a reference no cell has


def _prefix(xml: bytes) -> str:
    """The namespace prefix of the sheet's tags ('x:' for <x:worksheet>), from its start."""
    root = _ROOT.search(xml)
    return root[1].decode() + ":" if root and root[1] else ""


def _cell_parser(book: _Book, prefix: str, rows: list[tuple[int, list[Any], int]]) -> tuple[Any, Callable[[], None]]:
    """An expat parser of sheet XML (tags with `prefix`) that appends each row to `rows` once it
    is complete, as (line, values, counted), and a function that appends the last row. A row
    holds the cells calamine reads as a value, or the marks would restore; `counted` is the width
    of its cells calamine counts in the sheet's range (0: none). Cells are read as calamine
    reads them: the last of <v>, <is> and <f> gives the value (a formula's alone is empty); a
    cell without a reference follows the one before it; a number is a date when its style's
    format shows one. Minimal work per element: this is the hot path of a large import."""
    strings, formats, is_1904 = book.strings, book.formats, book.is_1904
    columns, names, named, formulas, join = _COLUMNS, _NAMES, len(_NAMES), _Formulas(), "".join
    c_tag, t_tag, is_tag, v_tag, row_tag, f_tag, phonetic_tag = (prefix + n for n in ("c", "t", "is", "v", "row", "f",
                                                                                       "rPh"))
    parts: list[str] = []  # the text of the element being read
    texts: list[str] = []  # an inline string's text runs
    cdata: list[list[int]] = []  # where CDATA sections start and end in a <v>'s parts
    row = after = 0  # calamine's row (from 0) for cells without a reference; the column after the last cell
    line = column = current = counted = 0  # the cell's line and column; the row being filled, its counted width
    values: list[Any] = []
    line_text, expected = "", _NOWHERE  # the line as references spell it; the reference the next cell likely has
    kind: str | None = None
    style: str | None = None
    formula: dict[str, str] | None = None
    child = reading = ""  # the cell's last child giving its value; the element whose text is read
    value_text: str | None = None
    read_text = formula_text = ""  # a <v>'s text as calamine reads it (without CDATA)
    phonetic = preserve = False

    def start(tag: str, attrib: dict[str, str]) -> None:
        nonlocal line, column, line_text, kind, style, child, value_text, formula, row, phonetic, reading, preserve
        if tag == c_tag:
            ref = attrib.get("r")
            if ref == expected:
                column = after
            elif ref:
                letters = ref.rstrip("0123456789")
                column, text = columns[letters], ref[len(letters):]
                if text != line_text:
                    line, line_text = int(text), text
            else:
                line, column, line_text = row + 1, after, ""
            kind, style = attrib.get("t"), attrib.get("s")
            child, value_text, formula = "", None, None
        elif tag == t_tag:
            parts.clear()
            preserve = bool(attrib) and attrib.get("xml:space") == "preserve"
        elif tag == is_tag:
            child = tag
            texts.clear()
        elif tag == v_tag:
            child = reading = tag
            parts.clear()
        elif tag == row_tag:
            r = attrib.get("r")
            if r:
                row = int(r) - 1
        elif tag == f_tag:
            child, formula = tag, attrib
            parts.clear()
        elif tag == phonetic_tag:
            phonetic = True

    def end(tag: str) -> None:
        nonlocal value_text, read_text, formula_text, row, after, expected, phonetic, reading, counted
        if tag == t_tag:
            if not phonetic:
                texts.append(join(parts) if preserve else join(parts).strip(_XML_SPACE))
        elif tag == c_tag:
            after = column + 1
            expected = names[after] + line_text if after < named and line_text else _NOWHERE
            counts = True
            if child == is_tag:
                value: Any = texts[0] if len(texts) == 1 else join(texts)
                value = (_unescape(value) if "_x" in value else value) or None
            elif child == v_tag:
                value = read_text
                if kind is None or kind == "n":
                    number = _number(value) if value else None
                    if number is not None:
                        fmt = formats[style] if style is not None else 0
                        value = (_plain(number) if not fmt else _excel_datetime(number, is_1904) if fmt == _DATETIME
                                 else _excel_duration(number))
                    elif value and kind is not None:
                        raise _corrupt(f"cell {_cell_name(line, column)} holds {value!r}, not a number")
                    else:
                        counts = bool(value)
                else:
                    value, counts = _typed(kind, value, strings, line, column)
            else:
                value, counts = None, False
            if formula is not None or kind == "e":
                mark = formulas.mark(kind, formula, formula_text, value_text, line, column)
                if mark is not None:
                    value = mark
                elif not counts:
                    return
            elif not counts:
                return
            if line != current:
                next_row(line)
            size = len(values)
            if column == size:
                values.append(value)
            elif column > size:
                values.extend([None] * (column - size))
                values.append(value)
            else:
                values[column] = value
            if counts and column >= counted:
                counted = column + 1
        elif tag == is_tag:
            pass
        elif tag == v_tag:
            value_text = read_text = join(parts)
            if cdata:  # the marks see a CDATA section's text, calamine does not
                kept = [0] + [e for _, e in cdata], [s for s, _ in cdata] + [len(parts)]
                read_text = join(join(parts[a:b]) for a, b in zip(*kept, strict=True))
                cdata.clear()
            reading = ""
        elif tag == row_tag:
            row, after, expected = row + 1, 0, _NOWHERE
        elif tag == f_tag:
            formula_text = join(parts)
        elif tag == phonetic_tag:
            phonetic = False

    def next_row(line: int) -> None:
        nonlocal current, values, counted
        if line < current:
            raise _corrupt(f"row {line} comes after row {current}")
        finish()
        current, values, counted = line, [], 0

    def finish() -> None:
        if current:
            rows.append((current, values, counted))

    def cdata_start() -> None:
        if reading:
            cdata.append([len(parts), len(parts)])

    def cdata_end() -> None:
        if reading:
            cdata[-1][1] = len(parts)

    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.buffer_size = _BLOCK
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, parts.append
    parser.StartCdataSectionHandler, parser.EndCdataSectionHandler = cdata_start, cdata_end
    return parser, finish


def _typed(kind: str, text: str, strings: list[str], line: int, column: int) -> tuple[Any, bool]:
    """A <v> of a cell with a type other than a number: its value, and whether calamine counts
    it. What calamine refuses fails the file, as calamine would."""
    if kind == "s":
        if not text:
            return None, False
        index = int(text) if text.strip().isdigit() else -1
        if not 0 <= index < len(strings):
            raise _corrupt(f"cell {_cell_name(line, column)} refers to the missing shared string {text!r}")
        return strings[index] or None, True
    if kind == "str":
        return _unescape(text) or None, True
    if kind == "b":
        flag = text.strip().lower()
        if flag not in _BOOLEANS:
            raise _corrupt(f"cell {_cell_name(line, column)} holds {text!r}, not a boolean")
        return _BOOLEANS[flag], flag != ""
    if kind == "e":
        if text and text not in _ERRORS:
            raise _corrupt(f"cell {_cell_name(line, column)} holds the unknown error {text!r}")
        return None, bool(text)
    if kind == "d":
        return (_iso(text) if text else None), True
    if kind == "inlineStr":
        return None, False
    raise _corrupt(f"cell {_cell_name(line, column)} has the unknown type {kind!r}")


def _parsed(stream: IO[bytes], book: _Book) -> Iterator[tuple[int, list[Any], int]]:
    """The sheet's rows as _cell_parser gives them, parsed block by block."""
    rows: list[tuple[int, list[Any], int]] = []
    parser = finish = None
    while block := stream.read(_BLOCK):
        if parser is None:
            parser, finish = _cell_parser(book, _prefix(block), rows)
        parser.Parse(block, False)
        yield from rows
        rows.clear()
    if parser is not None:
        parser.Parse(b"", True)
        finish()
        yield from rows


def _sheet_rows(open_part: Callable[[], IO[bytes]], book: _Book) -> Iterator[tuple[int, list[Any]]]:
    """The sheet's rows as calamine and the marks give them: rows down to the last with a
    value calamine counts padded to its range's width, later ones as wide as their marks. Rows
    without a cell are left out, being blank, except row 1, the header."""
    last_line, width = _extent(open_part, book)
    with open_part() as stream:
        first = True
        for line, values, _ in _parsed(stream, book):
            if first and line > 1 and last_line:  # calamine gives the rows above its first value (blank)
                yield 1, [None] * width
            first = False
            if line <= last_line and len(values) < width:
                values.extend([None] * (width - len(values)))
            yield line, values


def _extent(open_part: Callable[[], IO[bytes]], book: _Book) -> tuple[int, int]:
    """The last line with a value calamine counts, and the width of calamine's range (its last
    column + 1). Found by searching the XML for cells in wider columns than seen so far and
    checking the last cells of each stretch; parsed cell by cell when cells lack references."""
    with open_part() as stream:
        extent = _searched_extent(stream, book)
    if extent is None:
        last_line = width = 0
        with open_part() as stream:
            for line, _, counted in _parsed(stream, book):
                if counted:
                    last_line, width = line, max(width, counted)
        extent = (last_line, width)
    return extent


def _searched_extent(stream: IO[bytes], book: _Book) -> tuple[int, int] | None:
    """_extent's search; None when only parsing every cell can tell."""
    last_line = width = 0
    wider: re.Pattern[bytes] | None = None
    for tags, region in _regions(stream):
        first_row = region.find(tags.row_start)
        if tags.unreferenced.search(region, first_row):
            return None  # a cell without a reference (or not first): it follows the cell before it
        try:
            wider = wider or _wider(width, tags)
            position = 0
            while match := wider.search(region, position):
                cell, position = _cell_at(region, match.start(), tags)
                for line, counted in _counted(cell, book, tags):
                    last_line, width = max(last_line, line), max(width, counted)
                    wider = _wider(width, tags)
            position = len(region)
            for _ in range(64):  # the last cell with a value, from the end
                position = region.rfind(tags.referenced, 0, position)
                cells = _counted(_cell_at(region, position, tags)[0], book, tags) if position >= 0 else []
                if position < 0 or cells:
                    last_line = max([last_line] + [line for line, _ in cells])
                    break
            else:  # a long stretch of empty cells: read all of its rows
                for line, counted in _counted(region[first_row:], book, tags):
                    last_line, width = max(last_line, line), max(width, counted)
                wider = _wider(width, tags)
        except expat.ExpatError:  # what looked like a cell was not one (text in a CDATA section)
            return None
    return last_line, width


def _cell_at(region: bytes, start: int, tags: _Tags) -> tuple[bytes, int]:
    """The cell element starting at `start` (b"" when it is empty, <c .../>), and where it ends."""
    close = region.find(b">", start)
    if close > 0 and region[close - 1] == ord("/"):
        return b"", close + 1
    end = region.find(tags.cell_end, close)
    if close < 0 or end < 0:
        raise expat.ExpatError("a cell that never ends")
    end += len(tags.cell_end)
    return region[start:end], end


def _counted(xml: bytes, book: _Book, tags: _Tags) -> list[tuple[int, int]]:
    """(line, counted width) of the rows in xml (cells, or whole rows) with cells calamine counts."""
    if tags.value_start not in xml and tags.inline not in xml:  # calamine counts a cell by its <v> or <is>
        return []
    rows: list[tuple[int, list[Any], int]] = []
    parser, finish = _cell_parser(book, tags.prefix.decode(), rows)
    parser.Parse(b"<cells>" + xml + b"</cells>", True)
    finish()
    return [(line, counted) for line, _, counted in rows if counted]


def _wider(width: int, tags: _Tags) -> re.Pattern[bytes]:
    """A search for cells in a column beyond the first `width` (their references' letters sort
    after the last column's, or have more of them)."""
    letters = _cell_name(1, width - 1)[:-1] if width else ""
    longer = [f"[A-Za-z]{{{len(letters) + 1},}}"]
    later = ["".join(f"[{c}{c.lower()}]" for c in letters[:i]) + f"[{chr(ord(c) + 1)}-Z{chr(ord(c) + 33)}-z]"
             + f"[A-Za-z]{{{len(letters) - i - 1}}}" for i, c in enumerate(letters) if c != "Z"]
    return re.compile(re.escape(tags.referenced) + f"(?:{'|'.join(longer + later)})[0-9]".encode())
