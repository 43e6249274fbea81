"""The upload form of the Imports pages: a CSV or XLSX file, its type and the run options."""

from __future__ import annotations

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
        return data
