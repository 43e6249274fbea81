"""One rule decides whose batches and imports a caller sees, whichever way they come in: the
dashboard's pages, the ax_get_*_status tools (API, MCP, CLI) and an admin's token capped to a
lower role all follow core.accounts.roles.may_see_all."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from core.accounts.roles import MCP_ADMIN, MCP_READ, MCP_WRITE, ROLE_LEVEL, may_see_all, owned_by_or_admin
from core.errors import ToolError
from core.imports.models import ImportJob
from core.tools.models import BatchRun
from core.tools.pipeline import call_tool
from tests.dashboard.conftest import batch_run
from tests.helpers import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def import_job(user, job_id: str) -> ImportJob:
    job = ImportJob(job_id=job_id, user=user, type="customers", format="csv", status="completed")
    job.file.save(f"{job_id}.csv", ContentFile(b"customer_account\n"), save=False)
    job.save()
    return job


def tool_sees(tool: str, arguments: dict, user, role_cap: int | None = None) -> bool:
    try:
        call_tool(tool, arguments, user, role_cap=role_cap)
    except ToolError as error:
        assert error.code in ("IMPORT_NOT_FOUND", "BATCH_NOT_FOUND"), error.code
        return False
    return True


def test_only_the_admin_level_sees_everyones_rows():
    assert [may_see_all(ROLE_LEVEL[role]) for role in (MCP_READ, MCP_WRITE, MCP_ADMIN)] == [False, False, True]
    assert not may_see_all(0)


def test_owned_by_or_admin_filters_below_the_admin_level(admin, writer, reader):
    mine, theirs = batch_run(reader, "B-mine"), batch_run(writer, "B-theirs")
    rows = BatchRun.objects.all()
    assert set(owned_by_or_admin(rows, reader, ROLE_LEVEL[MCP_READ])) == {mine}
    assert set(owned_by_or_admin(rows, admin, ROLE_LEVEL[MCP_ADMIN])) == {mine, theirs}
    assert set(owned_by_or_admin(rows, admin, ROLE_LEVEL[MCP_WRITE])) == set()  # a token capped to write


@pytest.mark.parametrize("viewer, sees_others", [("reader", False), ("writer", False), ("admin", True)])
def test_the_dashboard_and_the_tools_agree_on_whose_rows_a_user_sees(request, viewer, sees_others, writer,
                                                                      reader):
    user = request.getfixturevalue(viewer)
    owner = reader if viewer == "writer" else writer
    job, run = import_job(owner, "IMP-other"), batch_run(owner, "B-other")
    page = logged_in(user)

    assert (page.get(f"/imports/{job.job_id}/").status_code == 200) is sees_others
    assert (page.get(f"/batches/{run.batch_id}/").status_code == 200) is sees_others
    assert ("IMP-other" in page.get("/imports/").content.decode()) is sees_others
    assert ("B-other" in page.get("/batches/").content.decode()) is sees_others
    assert tool_sees("ax_get_import_status", {"job_id": job.job_id}, user) is sees_others
    assert tool_sees("ax_get_batch_status", {"batch_id": run.batch_id}, user) is sees_others

    # Everyone sees their own.
    own_job, own_run = import_job(user, "IMP-own"), batch_run(user, "B-own")
    assert page.get(f"/imports/{own_job.job_id}/").status_code == 200
    assert page.get(f"/batches/{own_run.batch_id}/").status_code == 200
    assert tool_sees("ax_get_import_status", {"job_id": own_job.job_id}, user)
    assert tool_sees("ax_get_batch_status", {"batch_id": own_run.batch_id}, user)


def test_an_admins_token_capped_below_admin_sees_only_the_admins_own_rows(admin, writer):
    job, run = import_job(writer, "IMP-other"), batch_run(writer, "B-other")
    own = batch_run(admin, "B-own")
    capped = ROLE_LEVEL[MCP_WRITE]
    assert not tool_sees("ax_get_import_status", {"job_id": job.job_id}, admin, role_cap=capped)
    assert not tool_sees("ax_get_batch_status", {"batch_id": run.batch_id}, admin, role_cap=capped)
    assert tool_sees("ax_get_batch_status", {"batch_id": own.batch_id}, admin, role_cap=capped)
    assert tool_sees("ax_get_batch_status", {"batch_id": run.batch_id}, admin)
