"""Readers for import files: CSV (encoding, delimiter and decimal comma detected) read with
pandas' C parser in chunks, and XLSX (core.imports.xlsx) read with calamine or streamed.

A reader yields (line, values): `line` is the row number a person sees in the file (the header
is line 1; for CSV the physical line where the record starts), `values` the raw cells. Blank
rows are skipped the same way on every read, so a checkpoint (a count of yielded rows) always
points at the same row on resume.

A CSV is never held in memory as a whole, nor is a large XLSX sheet; calamine holds a smaller
sheet's cells while it is read, and converts each row to Python only when it is asked for.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

from core.imports.models import Dialect
from core.imports.xlsx import OLE_MAGIC, FormulaWithoutValue, ImportFailure, Rows, check_xlsx, xlsx_rows

__all__ = ["OLE_MAGIC", "FormulaWithoutValue", "ImportFailure", "Rows", "check_xlsx", "clean_header",
           "detect_encoding", "open_rows", "sniff_csv"]

_SAMPLE_BYTES = 256 * 1024
_DECIMAL_COMMA = re.compile(r"^-?(\d{1,3}(\.\d{3})+|\d+),\d+$")
_CHUNK_ROWS = 5000
_MAX_CELL = csv.field_size_limit()  # 131,072 characters
_UNTERMINATED = re.compile(r"EOF inside string starting at row (\d+)")


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


def _header_text(value: Any) -> str:
    return ("" if value is None else str(value)).strip().lstrip("\ufeff")


def clean_header(values: list[Any]) -> list[str]:
    """Header cells as column names: stripped, lowercase, whitespace runs as '_'."""
    return [re.sub(r"\s+", "_", _header_text(v).lower()) for v in values]


@contextmanager
def open_rows(path: Path, fmt: str, dialect: Dialect | None, sheet: str = "", *, raw_header: bool = False):
    """Yield (header, rows) where rows iterates (line, values) and rows.count() counts them (see
    Rows). The header is clean_header()'s column names, or with raw_header the header cells as
    text (stripped, without a BOM)."""
    check_size(path)
    with ExitStack() as resources:
        if fmt == "xlsx":
            header, rows = xlsx_rows(path, sheet, resources)
        else:
            header, rows = _csv_rows(path, dialect or sniff_csv(path), resources)
        if not any(v not in (None, "") and str(v).strip() for v in header):
            raise ImportFailure("EMPTY_FILE", "the sheet has no header row" if fmt == "xlsx"
                                else "the file has no header row")
        yield ([_header_text(v) for v in header] if raw_header else clean_header(header)), rows


def preload() -> None:
    """Import the readers' libraries (pandas, calamine) now: a worker calls this when it starts,
    so that its first import does not spend a third of a second loading them. Web processes
    never read a whole file and do not load them."""
    import pandas  # noqa: F401
    import python_calamine  # noqa: F401


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


def _csv_rows(path: Path, dialect: Dialect, resources: ExitStack) -> tuple[list[str], Rows]:
    from pandas.errors import EmptyDataError, ParserError

    try:
        first = _read_csv(path, dialect, nrows=1)
    except EmptyDataError:
        return [], Rows(iter(()), lambda: 0)
    except UnicodeDecodeError as exc:
        raise _decode_failure(path, dialect, 1, exc) from None
    except ParserError as exc:
        if _UNTERMINATED.search(str(exc)):
            raise _unterminated(1) from None
        raise ImportFailure("INVALID_FILE", f"line 1: {exc}") from None
    header = first.iloc[0].tolist() if len(first) else []
    width = len(header)
    return header, Rows(_csv_records(path, dialect, width, resources), lambda: _csv_count(path, dialect, width))


def _csv_count(path: Path, dialect: Dialect, width: int) -> int:
    """How many rows _csv_records() yields, counted on pandas' frames without turning them into
    Python rows: a record is blank when every cell is empty or only spaces. A file pandas
    refuses somewhere, or with a cell _csv_records() refuses, is counted by reading it as
    _csv_records() does, which raises the file's fault before the import writes anything."""
    import numpy as np
    import pandas as pd
    from pandas.errors import ParserError

    total = 0
    try:
        with _read_csv(path, dialect, names=range(width), chunksize=_CHUNK_ROWS) as chunks:
            for number, chunk in enumerate(chunks):
                cells = chunk.to_numpy(dtype=object)
                if max(map(len, cells.ravel()), default=0) > _MAX_CELL:
                    raise ParserError("a cell is too long")  # _csv_records() says where
                if number == 0:
                    cells = cells[1:]  # the header
                filled = cells != ""
                rows = np.flatnonzero(filled.any(axis=1))
                # Most rows have text in their first filled cell; the others are looked at whole.
                first = pd.Series(cells[rows, filled[rows].argmax(axis=1)], dtype=object)
                spaces = first.str.strip() == ""
                total += len(rows) - int(spaces.sum())
                total += sum(1 for values in cells[rows[spaces.to_numpy()]] if "".join(values).strip())
    except (ParserError, UnicodeDecodeError):
        with ExitStack() as resources:
            return sum(1 for _ in _csv_records(path, dialect, width, resources))
    return total


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
