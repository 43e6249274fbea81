"""A small organisation with every kind of rate, and audit rows that exercise every rule.

Plain functions, so the PostgreSQL integration test builds the same world; the fixtures of
tests/roi/conftest.py call them.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from core.accounts.models import Department
from core.accounts.roles import MCP_ADMIN, MCP_WRITE
from core.accounts.services import create_user
from core.audit.models import AuditEntry
from core.roi.models import Baseline

SEEDED = importlib.import_module("core.roi.migrations.0002_seed_baselines").BASELINES


def seed_baselines() -> None:
    """The migration's baselines, also after a transactional test elsewhere flushed them."""
    for tool, seconds, note in SEEDED:
        Baseline.objects.get_or_create(tool=tool, defaults={"seconds": seconds, "note": note})


def audit_row(tool: str, user=None, *, created: datetime, duration_ms: int = 100, success: bool = True,
              replayed: bool = False, department: str | None = None, username: str | None = None,
              batch_id: str = "") -> AuditEntry:
    """An unsaved audit row as the pipeline writes it (department and username snapshot the user's)."""
    if department is None:
        department = user.profile.department.code if user is not None and user.profile.department else ""
    return AuditEntry(
        tool=tool, user=user, username=username if username is not None else (user.username if user else ""),
        department=department, via="http", success=success, error_code="" if success else "CUST_NOT_FOUND",
        duration_ms=duration_ms, replayed=replayed, batch_id=batch_id, created=created)


def audit(tool: str, user=None, **fields) -> AuditEntry:
    row = audit_row(tool, user, **fields)
    row.save()
    return row


def at(day: str, clock: str = "12:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=UTC)


@dataclass
class World:
    fin: Department
    ops: Department
    alice: object  # own rate 80.25, FIN (70.50)
    bob: object  # FIN's rate
    carol: object  # OPS has no rate: the default
    dave: object  # no department, no rate: the default
    mallory: object  # a name and a department a spreadsheet would take for formulas
    boss: object  # MCP_Admin, calls the tool


def make_world() -> World:
    fin = Department.objects.create(code="FIN", name="Finance", hourly_rate=Decimal("70.50"))
    ops = Department.objects.create(code="OPS", name="Operations")
    evil = Department.objects.create(code="+cmd", name="=1+2", hourly_rate=Decimal("33.33"))
    return World(
        fin=fin, ops=ops,
        alice=create_user("alice", MCP_WRITE, department=fin, hourly_rate=Decimal("80.25")),
        bob=create_user("bob", MCP_WRITE, department=fin),
        carol=create_user("carol", MCP_WRITE, department=ops),
        dave=create_user("dave", MCP_WRITE),
        mallory=create_user('=HYPERLINK("http://evil.example","click")', MCP_WRITE, department=evil),
        boss=create_user("boss", MCP_ADMIN, department=ops, hourly_rate=Decimal("120.00")),
    )


TOOLS = ["ax_create_salesorder", "ax_create_customer", "ax_post_payment", "ax_get_customer", "ax_check_inventory",
         "import.customers", "ax_get_batch_status", "ax_batch_operations", "ax_bulk_import", "no_baseline_tool"]

SPAN = (date(2025, 1, 20), date(2025, 4, 10))


def make_sample(world: World) -> list[AuditEntry]:
    """~600 audit rows from 2025-01-20 to 2025-04-10 (UTC), a few exactly on day boundaries."""
    rng = random.Random(76)
    users = [world.alice, world.bob, world.carol, world.dave, world.mallory, None]
    start = datetime(2025, 1, 20, tzinfo=UTC)
    seconds = int((datetime(2025, 4, 11, tzinfo=UTC) - start).total_seconds())
    rows = []
    for n in range(600):
        user = rng.choice(users)
        created = start + timedelta(seconds=rng.randrange(seconds), microseconds=rng.randrange(1_000_000))
        if n % 50 == 0:  # the last microsecond of a day, and the first of the next
            created = created.replace(hour=23, minute=59, second=59, microsecond=999_999)
        elif n % 50 == 1:
            created = created.replace(hour=0, minute=0, second=0, microsecond=0)
        department = None if n % 37 else "GHOST"  # an audited department that no longer exists
        rows.append(audit_row(rng.choice(TOOLS), user, created=created, duration_ms=rng.choice(
            [0, 1, 137, 2_500, 29_999, 45_000, 119_999, 300_000, 999_999]), success=rng.random() > 0.1,
            replayed=rng.random() < 0.05, department=department if user is not None else ""))
    return AuditEntry.objects.bulk_create(rows)  # one INSERT: the triggers still see every row
