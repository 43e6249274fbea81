"""Streaming readers for import files: CSV (encoding, delimiter and decimal comma detected)
and XLSX (openpyxl read-only mode). Neither ever holds the whole file in memory.

A reader yields (line, values): `line` is the row number a person sees in the file (the header
is line 1), `values` the raw cells. Blank rows are skipped the same way on every read, so a
checkpoint (a count of yielded rows) always points at the same row on resume.
"""

from __future__ import annotations

import codecs
import csv
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings

from core.imports.models import Dialect

_SAMPLE_BYTES = 256 * 1024
_DECIMAL_COMMA = re.compile(r"^-?(\d{1,3}(\.\d{3})+|\d+),\d+$")
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class ImportFailure(Exception):
    """The file as a whole cannot be imported (a stable code and a message for people)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
    """Refuse what openpyxl should never open: encrypted files, non-zips, zip bombs."""
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


def _clean_header(values: list[Any]) -> list[str]:
    return [re.sub(r"\s+", "_", str(v if v is not None else "").strip().lstrip("\ufeff").lower()) for v in values]


@contextmanager
def open_rows(path: Path, fmt: str, dialect: Dialect | None, sheet: str = ""):
    """Yield (header, rows) where rows iterates (line, values)."""
    check_size(path)
    if fmt == "xlsx":
        with _xlsx_rows(path, sheet) as result:
            yield result
    else:
        with _csv_rows(path, dialect or sniff_csv(path)) as result:
            yield result


@contextmanager
def _csv_rows(path: Path, dialect: Dialect):
    with path.open(encoding=dialect.encoding, newline="") as f:
        reader = csv.reader(f, delimiter=dialect.delimiter)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ImportFailure("INVALID_FILE", f"line 1: {exc}") from None
        if header is None or not any(h.strip() for h in header):
            raise ImportFailure("EMPTY_FILE", "the file has no header row")

        def rows() -> Iterator[tuple[int, list[str]]]:
            last = reader.line_num
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise ImportFailure("INVALID_FILE", f"line {last + 1}: {exc}") from None
                line, last = last + 1, reader.line_num
                if values and (values[0].strip() or any(v.strip() for v in values)):
                    yield line, values

        yield _clean_header(header), rows()


@contextmanager
def _xlsx_rows(path: Path, sheet: str):
    import openpyxl

    check_xlsx(path)
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise ImportFailure("INVALID_FILE", f"the workbook cannot be read: {type(exc).__name__}") from None
    try:
        if sheet:
            if sheet not in workbook.sheetnames:
                raise ImportFailure("SHEET_NOT_FOUND", f"no sheet named {sheet!r}; the workbook has "
                                                       f"{', '.join(workbook.sheetnames)}")
            worksheet = workbook[sheet]
        else:
            worksheet = workbook.worksheets[0]
        values = worksheet.iter_rows(values_only=True)
        header = next(values, None)
        if header is None or not any(v not in (None, "") for v in header):
            raise ImportFailure("EMPTY_FILE", "the sheet has no header row")

        def rows() -> Iterator[tuple[int, list[Any]]]:
            try:
                for line, row in enumerate(values, start=2):
                    if any(v not in (None, "") and str(v).strip() for v in row):
                        yield line, list(row)
            except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
                raise ImportFailure("INVALID_FILE", f"the workbook is corrupt: {type(exc).__name__}") from None

        yield _clean_header(list(header)), rows()
    finally:
        workbook.close()
