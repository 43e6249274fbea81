from __future__ import annotations

import pytest


@pytest.fixture
def staff_admin(admin):
    """The admin as `seed_demo` makes it: MCP_Admin and a Django superuser."""
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    return admin
