"""The forms of the Imports pages: the upload (a CSV or XLSX file, its type and the run options),
the mapping step (which file column gives which field) and "Import this file now". Each one is
turned into the arguments of ax_bulk_import."""

from __future__ import annotations

import base64
import codecs
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.urls import reverse

from core.errors import ToolError
from core.imports.mapping import normalise
from core.imports.models import ImportJob, ImportMapping, ImportMode
from core.imports.services import MAX_BATCH_SIZE
from core.imports.specs import SPECS

FORMAT_CHOICES = [("", "From the file name"), *ImportJob.Format.choices]
EXTENSIONS = {".csv": ImportJob.Format.CSV, ".xlsx": ImportJob.Format.XLSX}
# Every .xlsx is a zip archive; anything else named .xlsx would only fail later on the worker.
ZIP_MAGIC = b"PK\x03\x04"
BYTE_ORDER_MARKS = {codecs.BOM_UTF8: "utf-8-sig", codecs.BOM_UTF16_LE: "utf-16", codecs.BOM_UTF16_BE: "utf-16"}
MODE_HELP = "In the update modes a blank cell leaves a field as it is, and #N/A clears it."
IGNORE = ""  # the value of "— ignore —" in a column's select
SAVED_MAPPINGS_SHOWN = 500


def csv_text(content: bytes) -> tuple[str, str] | None:
    """The CSV as text and the encoding it came in, for ax_bulk_import, decoded the way the
    import engine reads a stored file (core.imports.readers.detect_encoding): by its byte-order
    mark, else as UTF-8, else as Windows-1252, else as Latin-1. None when the file has a
    byte-order mark but is not that text."""
    marked = next((encoding for bom, encoding in BYTE_ORDER_MARKS.items() if content.startswith(bom)), None)
    for encoding in (marked,) if marked else ("utf-8", "cp1252", "latin-1"):
        try:
            return content.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return None


def tool_file(fmt: str, content: bytes) -> dict[str, str]:
    """The file as ax_bulk_import takes it: XLSX as base64 `data`; CSV as text `data` with the
    `encoding` it came in, so the hub keeps it, and sends its failed rows back, in that
    encoding. A CSV given here has passed csv_text() on the upload form."""
    if fmt == ImportJob.Format.XLSX:
        return {"data": base64.b64encode(content).decode("ascii")}
    text, encoding = csv_text(content) or ("", "utf-8")
    return {"data": text, "encoding": encoding}


def show_tool_error(form: forms.Form, error: ToolError, fields: dict[str, str] | None = None) -> None:
    """A refusal of the tool on the form: next to the field it names when the form shows that
    field (`fields` translates the tool's argument names to the form's), else above the form."""
    name = (fields or {}).get(error.field or "", error.field)
    if name and name in form.fields and not form.fields[name].widget.is_hidden:
        form.add_error(name, f"{error.code}: {error.message}")
    else:
        form.add_error(None, f"{error.code}: {error.message}")


def mode_choices(type_name: str | None = None) -> list[tuple[str, str]]:
    """The modes a type takes: every mode, or only create for a type whose records are not updated."""
    spec = SPECS.get(type_name or "")
    return [c for c in ImportMode.choices if spec is None or spec.updatable or c[0] == ImportMode.CREATE]


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="File", allow_empty_file=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,text/csv,"
                                                         "application/vnd.openxmlformats-officedocument."
                                                         "spreadsheetml.sheet"}),
        help_text="CSV (UTF-8 or Windows-1252; comma, semicolon or tab) or Excel .xlsx.")
    type = forms.ChoiceField(label="Type", choices=[(name, name) for name in SPECS])
    mode = forms.ChoiceField(label="Mode", choices=ImportMode.choices, required=False, initial=ImportMode.CREATE,
                             help_text=MODE_HELP)
    mapping_name = forms.ChoiceField(label="Saved mapping", required=False,
                                     help_text="The columns of an earlier file of the same source.")
    format = forms.ChoiceField(label="Format", choices=FORMAT_CHOICES, required=False)
    sheet = forms.CharField(label="Sheet (xlsx)", required=False, max_length=100,
                            help_text="Empty = the first sheet.")
    batch_size = forms.IntegerField(label="Batch size", min_value=1, max_value=MAX_BATCH_SIZE, initial=100,
                                    help_text="Rows written per transaction.")
    validate_only = forms.BooleanField(label="Validate only (check every row, write nothing)", required=False)
    one_off = forms.BooleanField(label="One-off migration, not counted in ROI", required=False)

    # The tool's argument names where the form's differ, for its refusals (show_tool_error).
    TOOL_FIELDS = {"data": "file", "roi": "one_off", "filename": "file"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sheet"].widget.attrs.update(placeholder="first sheet")
        self.fields["mode"].widget.attrs.update({"aria-describedby": "import-mode-help"})
        saved: dict[str, list[tuple[str, str]]] = {}
        for type_name, name in ImportMapping.objects.values_list("type", "name")[:SAVED_MAPPINGS_SHOWN]:
            saved.setdefault(type_name, []).append((name, name))
        # Grouped by type; the tool looks the name up among the mappings of the type chosen.
        self.fields["mapping_name"].choices = [(IGNORE, "— none —"), *saved.items()]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["mode"] = data.get("mode") or ImportMode.CREATE
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
        data["content"] = upload.read()
        if fmt == ImportJob.Format.CSV and csv_text(data["content"]) is None:
            self.add_error("file", "The file starts with a Unicode byte-order mark but is not Unicode text; save it "
                                   "again as CSV UTF-8.")
        return data

    def options(self) -> dict[str, Any]:
        """The run options, as ax_bulk_import names them (the file aside)."""
        data = self.cleaned_data
        return {"type": data["type"], "format": data["format"], "filename": data["file"].name,
                "sheet": data["sheet"], "validate_only": data["validate_only"], "batch_size": data["batch_size"],
                "mode": data["mode"], "roi": not data["one_off"]}

    def arguments(self) -> dict[str, Any]:
        """ax_bulk_import's arguments: the file as the tool takes it (CSV as text, XLSX as base64)."""
        data = self.cleaned_data
        arguments = {**self.options(), **tool_file(data["format"], data["content"])}
        if data["mapping_name"]:
            arguments["mapping_name"] = data["mapping_name"]
        return arguments


@dataclass(frozen=True)
class FileColumn:
    """A column of an uploaded file: its place, its header text and its first values."""

    index: int
    name: str
    samples: tuple[str, ...]


class MappingForm(forms.Form):
    """The mapping step: a field (or nothing) per file column, the type, and a name to save the
    mapping under. The columns come from the staged file, never from the request; the selects
    offer the fields of `shown_type`, the type they were rendered for."""

    token = forms.CharField(widget=forms.HiddenInput, max_length=100)
    shown_type = forms.ChoiceField(widget=forms.HiddenInput, choices=[(name, name) for name in SPECS])
    type = forms.ChoiceField(label="Type", choices=[(name, name) for name in SPECS])
    save_as = forms.CharField(label="Save this mapping as", required=False, max_length=100,
                              help_text="Optional: a name to pick this mapping by for the next file of this source.")

    def __init__(self, *args: Any, columns: list[FileColumn], shown_type: str, mode: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.columns = columns
        self.spec = SPECS[shown_type]
        self.required = self.spec.required_columns(mode)
        choices = [(IGNORE, "— ignore —")] + [
            (c.name, f"{c.name} (required)" if c.name in self.required else c.name) for c in self.spec.columns]
        for column in columns:
            self.fields[self.field_name(column)] = forms.ChoiceField(label=column.name, choices=choices,
                                                                     required=False)
        # htmx shows the fields of another type as soon as it is picked; without it, submitting does.
        self.fields["type"].widget.attrs.update({
            "aria-describedby": "mapping-type-help", "hx-post": reverse("dashboard:import_mapping"),
            "hx-trigger": "change", "hx-target": "#import-mapping", "hx-swap": "outerHTML"})
        self.fields["save_as"].widget.attrs.update(placeholder="e.g. SAP export")

    @staticmethod
    def field_name(column: FileColumn) -> str:
        return f"column_{column.index}"

    def rows(self) -> list[tuple[FileColumn, forms.BoundField]]:
        return [(column, self[self.field_name(column)]) for column in self.columns]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        chosen = {column.name: data.get(self.field_name(column)) or None for column in self.columns}
        twice = sorted(field for field, n in Counter(f for f in chosen.values() if f).items() if n > 1)
        for field in twice:
            names = ", ".join(name for name, f in chosen.items() if f == field)
            self.add_error(None, f"The columns {names} all give {field}; set all but one of them to “— ignore —”.")
        missing = [f for f in self.required if f not in chosen.values()]
        if missing:
            self.add_error(None, f"No column gives the required field{'s' if len(missing) > 1 else ''} "
                                 f"{', '.join(missing)}: pick the column that holds "
                                 f"{'each' if len(missing) > 1 else 'it'}.")
        data["mapping"] = chosen
        return data

    def mapping(self) -> dict[str, str | None]:
        """{file column: field or None}, for ax_bulk_import: every column the step gives a field,
        and the ignored columns that would otherwise give the field they are named after."""
        named = {normalise(c.name) for c in self.spec.columns}
        return {column: field for column, field in self.cleaned_data["mapping"].items()
                if field or normalise(column) in named}


class ImportNowForm(forms.Form):
    """The mode and batch size to run a finished validate-only job's file with ("Import this
    file now"); either left out keeps the job's."""

    mode = forms.ChoiceField(label="Mode", choices=ImportMode.choices, required=False)
    batch_size = forms.IntegerField(label="Batch size", min_value=1, max_value=MAX_BATCH_SIZE, required=False)
