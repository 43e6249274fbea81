"""Dashboard fixtures: logged-in clients per role, audit rows and batch runs to look at."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from core.audit.models import AuditEntry
from core.tools.models import BatchRun
from tests.helpers import logged_in


@pytest.fixture
def as_admin(staff_admin) -> Client:
    return logged_in(staff_admin)


@pytest.fixture
def as_writer(writer) -> Client:
    return logged_in(writer)


@pytest.fixture
def as_reader(reader) -> Client:
    return logged_in(reader)


@pytest.fixture
def as_stakeholder(stakeholder) -> Client:
    return logged_in(stakeholder)


@pytest.fixture
def as_outsider(outsider) -> Client:
    return logged_in(outsider)


def audit(user=None, *, tool: str = "ax_get_customer", success: bool = True, ago: timedelta = timedelta(0),
          **fields: Any) -> AuditEntry:
    entry = AuditEntry.objects.create(
        tool=tool, user=user, username=getattr(user, "username", ""), success=success,
        error_code="" if success else fields.pop("error_code", "CUST_NOT_FOUND"), via=fields.pop("via", "http"),
        duration_ms=fields.pop("duration_ms", 12), **fields)
    if ago:
        AuditEntry.objects.filter(pk=entry.pk).update(created=timezone.now() - ago)
        entry.refresh_from_db()
    return entry


def batch_run(user, batch_id: str, *, status: str = BatchRun.Status.COMPLETED, total: int = 2,
              processed: int | None = None, results: list[dict[str, Any]] | None = None, **fields: Any) -> BatchRun:
    requests = fields.pop("requests", [{"tool": "ax_get_customer", "arguments": {"customer_account": "CUST-001"}}]
                          * total)
    done = status in (BatchRun.Status.COMPLETED, BatchRun.Status.FAILED)
    if results is None and done:
        results = [{"index": i, "success": True, "output": {"customer_account": "CUST-001"}} for i in range(total)]
    successful = sum(1 for r in results or [] if r["success"])
    return BatchRun.objects.create(
        batch_id=batch_id, user=user, status=status, requests=requests, total=total,
        processed=total if processed is None and done else (processed or 0), results=results,
        successful=successful, failed=len(results or []) - successful,
        via=fields.pop("via", "http"), finished=timezone.now() if done else None, duration_ms=40 if done else None,
        **fields)
