from __future__ import annotations

import pytest

from core.audit.models import AuditEntry
from tests.roi.world import World, make_sample, make_world, seed_baselines


@pytest.fixture(autouse=True)
def _seeded_baselines(db) -> None:
    seed_baselines()


@pytest.fixture
def world(db) -> World:
    return make_world()


@pytest.fixture
def sample(world) -> list[AuditEntry]:
    return make_sample(world)
