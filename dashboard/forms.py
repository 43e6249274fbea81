"""Forms of the dashboard: the audit filter and the batch submission."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from core.accounts.models import Department
from core.errors import ToolError
from core.tools import jsonio
from core.tools.batch import MAX_PARALLEL, MAX_REQUESTS
from core.tools.registry import all_tools

SUCCESS_CHOICES = [("", "Any result"), ("ok", "Succeeded"), ("failed", "Failed")]


class AuditFilterForm(forms.Form):
    """GET filters of the audit log. An invalid value is reported and that filter ignored."""

    tool = forms.ChoiceField(required=False)
    user = forms.CharField(required=False, max_length=150, label="User")
    department = forms.ChoiceField(required=False)
    success = forms.ChoiceField(required=False, choices=SUCCESS_CHOICES, label="Result")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    batch = forms.CharField(required=False, max_length=40, label="Batch")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["tool"].choices = [("", "All tools")] + [(t.name, t.name) for t in all_tools()]
        self.fields["department"].choices = [("", "All departments")] + [
            (code, code) for code in Department.objects.values_list("code", flat=True)
        ]
        self.fields["user"].widget.attrs.update(placeholder="username", list="audit-users", autocomplete="off")
        self.fields["batch"].widget.attrs.update(placeholder="B-…")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filter(self, entries: QuerySet) -> QuerySet:
        """Apply every filter that is valid; call after is_valid()."""
        data = {name: value for name, value in self.cleaned_data.items() if value not in (None, "")}
        if "tool" in data:
            entries = entries.filter(tool=data["tool"])
        if "user" in data:
            entries = entries.filter(username__iexact=data["user"].strip())
        if "department" in data:
            entries = entries.filter(department=data["department"])
        if data.get("success") == "ok":
            entries = entries.filter(success=True)
        elif data.get("success") == "failed":
            entries = entries.filter(success=False)
        # Dates are whole days in the hub's time zone, both ends included.
        if "date_from" in data:
            entries = entries.filter(created__gte=_start_of(data["date_from"]))
        if "date_to" in data:
            entries = entries.filter(created__lt=_start_of(data["date_to"] + timedelta(days=1)))
        if "batch" in data:
            entries = entries.filter(batch_id=data["batch"].strip())
        return entries


def _start_of(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


BATCH_STATUS_CHOICES = [
    ("", "Any status"), ("active", "Queued or running"), ("queued", "Queued"), ("running", "Running"),
    ("completed", "Completed"), ("failed", "Failed"),
]


class BatchFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=BATCH_STATUS_CHOICES)

    def filter(self, runs: QuerySet) -> QuerySet:
        status = self.cleaned_data.get("status")
        if status == "active":
            return runs.filter(Q(status="queued") | Q(status="running"))
        if status:
            return runs.filter(status=status)
        return runs


BATCH_EXAMPLE = """[
  {"tool": "ax_check_inventory", "arguments": {"item_id": "ITEM-001"}},
  {"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-001"}}
]"""


class BatchForm(forms.Form):
    """A batch as JSON: the list of requests, or the whole ax_batch_operations arguments."""

    payload = forms.CharField(
        label="Requests (JSON)",
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false", "class": "code", "placeholder": BATCH_EXAMPLE}),
        help_text=f"A JSON array of up to {MAX_REQUESTS} requests {{tool, arguments, idempotency_key?}}, or the "
                  "whole arguments object of ax_batch_operations (options in it win over the fields below).",
    )
    is_async = forms.BooleanField(required=False, label="Run asynchronously on a worker (follow its progress live)")
    stop_on_error = forms.BooleanField(required=False, label="Stop on the first error")
    max_parallel = forms.IntegerField(min_value=1, max_value=MAX_PARALLEL, initial=5, label="Parallel operations")
    idempotency_key = forms.CharField(
        required=False, max_length=255, label="Idempotency key (optional)",
        help_text="Submitting again with the same key shows the first batch instead of running a second one.")

    def clean_payload(self) -> Any:
        text = self.cleaned_data["payload"]
        try:
            value = jsonio.loads(text)
        except (ValueError, RecursionError) as exc:  # a deeply nested document exhausts the recursion
            raise forms.ValidationError(f"This is not valid JSON: {str(exc)[:200]}") from None
        if isinstance(value, list):
            return {"requests": value}
        if isinstance(value, dict) and "requests" in value:
            return value
        raise forms.ValidationError('Give a JSON array of requests, or an object with a "requests" array.')

    # The argument a tool error names (its `field`, a dotted path) -> the form field it is shown beside.
    TOOL_FIELDS = {"requests": "payload", "max_parallel": "max_parallel", "async": "is_async",
                   "stop_on_error": "stop_on_error", "idempotency_key": "idempotency_key"}

    def add_tool_error(self, error: ToolError) -> None:
        """Show a refusal of ax_batch_operations beside the field it is about, at the top when it
        names none of them; a path into the requests (requests.2.tool) says which entry."""
        field = self.TOOL_FIELDS.get((error.field or "").split(".")[0])
        where = f" ({error.field})" if error.field else ""
        self.add_error(field, f"{error.code}{where}: {error.message}")

    def arguments(self) -> dict[str, Any]:
        """The ax_batch_operations arguments; call after is_valid()."""
        arguments = dict(self.cleaned_data["payload"])
        arguments.setdefault("async", self.cleaned_data["is_async"])
        arguments.setdefault("stop_on_error", self.cleaned_data["stop_on_error"])
        arguments.setdefault("max_parallel", self.cleaned_data["max_parallel"])
        return arguments
