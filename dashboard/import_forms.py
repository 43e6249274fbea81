"""The upload form of the Imports pages: a CSV or XLSX file, its type and the run options,
turned into the arguments of ax_bulk_import."""

from __future__ import annotations

import base64
import codecs
from pathlib import PurePath
from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from core.imports.models import ImportJob
from core.imports.services import MAX_BATCH_SIZE
from core.imports.specs import SPECS

FORMAT_CHOICES = [("", "From the file name"), *ImportJob.Format.choices]
EXTENSIONS = {".csv": ImportJob.Format.CSV, ".xlsx": ImportJob.Format.XLSX}
# Every .xlsx is a zip archive; anything else named .xlsx would only fail later on the worker.
ZIP_MAGIC = b"PK\x03\x04"
BYTE_ORDER_MARKS = {codecs.BOM_UTF8: "utf-8-sig", codecs.BOM_UTF16_LE: "utf-16", codecs.BOM_UTF16_BE: "utf-16"}


def csv_text(content: bytes) -> str | None:
    """The CSV as text, for ax_bulk_import, decoded the way the import engine reads a stored file
    (core.imports.readers.detect_encoding): by its byte-order mark, else as UTF-8, else as
    Windows-1252, else as Latin-1. None when the file has a byte-order mark but is not that text."""
    marked = next((encoding for bom, encoding in BYTE_ORDER_MARKS.items() if content.startswith(bom)), None)
    for encoding in (marked,) if marked else ("utf-8", "cp1252", "latin-1"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="File", allow_empty_file=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv,"
                                                         "application/vnd.openxmlformats-officedocument."
                                                         "spreadsheetml.sheet"}),
        help_text="CSV (UTF-8 or Windows-1252; comma, semicolon or tab) or Excel .xlsx.")
    type = forms.ChoiceField(label="Type", choices=[(name, name) for name in SPECS])
    format = forms.ChoiceField(label="Format", choices=FORMAT_CHOICES, required=False)
    sheet = forms.CharField(label="Sheet (xlsx)", required=False, max_length=100,
                            help_text="Empty = the first sheet.")
    batch_size = forms.IntegerField(label="Batch size", min_value=1, max_value=MAX_BATCH_SIZE, initial=100,
                                    help_text="Rows written per transaction.")
    validate_only = forms.BooleanField(label="Validate only (check every row, write nothing)", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sheet"].widget.attrs.update(placeholder="first sheet")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("file")
        if upload is None:
            return data
        if upload.size > settings.IMPORT_MAX_FILE_BYTES:
            # Refused before the file is read into memory.
            self.add_error("file", f"The file is larger than {filesizeformat(settings.IMPORT_MAX_FILE_BYTES)}.")
            return data
        fmt = data.get("format") or EXTENSIONS.get(PurePath(upload.name).suffix.lower())
        if not fmt:
            self.add_error("file", "Choose a .csv or .xlsx file, or pick its format.")
            return data
        data["format"] = fmt
        if fmt == ImportJob.Format.XLSX and upload.read(len(ZIP_MAGIC)) != ZIP_MAGIC:
            self.add_error("file", "This is not an Excel .xlsx workbook (an old .xls file? Save it as .xlsx or CSV).")
        upload.seek(0)
        if self.errors:  # the file is read only for an upload that can go ahead
            return data
        content = upload.read()
        if fmt == ImportJob.Format.XLSX:
            data["data"] = base64.b64encode(content).decode("ascii")
        elif (text := csv_text(content)) is not None:
            data["data"] = text
        else:
            self.add_error("file", "The file starts with a Unicode byte-order mark but is not Unicode text; save it "
                                   "again as CSV UTF-8.")
        return data

    def arguments(self) -> dict[str, Any]:
        """ax_bulk_import's arguments: the file as the tool takes it (CSV as text, XLSX as base64)."""
        data = self.cleaned_data
        return {"type": data["type"], "format": data["format"], "data": data["data"], "filename": data["file"].name,
                "sheet": data["sheet"], "validate_only": data["validate_only"], "batch_size": data["batch_size"]}
