"""Scale-out on PostgreSQL and Redis: threads and separate OS processes share one truth.

Run with `make test-integration` (DATABASE_URL=postgres://…/test REDIS_URL=redis://…/15).
The subprocesses talk to the same test database (pytest-django's `test_<name>`) and Redis,
so every test here is transactional: its data must be committed for them to see it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import OperationalError, connection, connections

from core.audit.models import AuditEntry
from core.erp import services
from core.erp.models import Item, SalesOrder
from core.errors import ToolError
from core.tools import breaker
from core.tools.models import IdempotencyRecord
from core.tools.pipeline import call_tool

pytestmark = pytest.mark.integration

if "postgresql" not in settings.DATABASES["default"]["ENGINE"] or not settings.REDIS_URL:
    pytest.skip(
        "needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); run `make test-integration`", allow_module_level=True
    )

ORDER = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-001", "quantity": 2}]}
SUBPROCESS_TIMEOUT = 120

# A workload for one OS process: wait for the go signal, call a tool N times, print the outcome
# codes as JSON. The rate-limit window is pinned to the same minute in every process, so the
# test cannot straddle a minute boundary; what is under test is that the counter is shared.
WORKLOAD = """
import json, os, sys, time
from pathlib import Path

import django

django.setup()

from django.contrib.auth import get_user_model

from core.errors import ToolError
from core.tools import ratelimit
from core.tools.pipeline import call_tool

pinned = float(os.environ["AX_TEST_CLOCK"])
ratelimit.clock = lambda: pinned
user = get_user_model().objects.get(username=sys.argv[1])
calls, go = int(sys.argv[2]), Path(sys.argv[3])
print("ready", flush=True)
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.005)
codes = {}
for _ in range(calls):
    try:
        call_tool("ax_get_customer", {"customer_account": "CUST-001"}, user, via="cli")
        code = "ok"
    except ToolError as error:
        code = error.code
    codes[code] = codes.get(code, 0) + 1
print(json.dumps(codes), flush=True)
"""


@pytest.fixture(autouse=True)
def _clean_shared_state():
    # Redis db 15 is this suite's own; clearing it is what makes tests independent.
    cache.clear()
    breaker.reset()
    yield
    breaker.reset()


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a child hub process: same Redis, and the test database, not the real one."""
    url = urlsplit(os.environ["DATABASE_URL"])
    database_url = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "PYTHONPATH": str(settings.BASE_DIR),
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in `count` threads released together; each result or raised exception."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # the test inspects it
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SUBPROCESS_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def call_as(username: str, tool: str, arguments: dict[str, Any], key: str | None = None) -> dict[str, Any] | ToolError:
    user = get_user_model().objects.get(username=username)
    try:
        return call_tool(tool, arguments, user, key, via="http")
    except ToolError as error:
        return error


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_with_one_idempotency_key_create_one_order(writer, erp):
    results = in_threads(8, lambda i: call_as("writer", "ax_create_salesorder", ORDER, key="same-key"))
    assert all(isinstance(r, dict) for r in results), results
    assert len({r["sales_id"] for r in results}) == 1
    assert SalesOrder.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert Item.objects.get(item_id="ITEM-001").reserved == 2
    assert AuditEntry.objects.filter(success=True, replayed=True).count() == 7
    assert AuditEntry.objects.filter(success=True, replayed=False).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_never_oversell(writer, erp):
    Item.objects.create(item_id="ITEM-RACE", name="Scarce", unit_price="10.00", on_hand=5)
    order = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-RACE", "quantity": 1}]}
    results = in_threads(10, lambda i: call_as("writer", "ax_create_salesorder", order))
    outcomes = Counter("ok" if isinstance(r, dict) else getattr(r, "code", repr(r)) for r in results)
    assert outcomes == {"ok": 5, "INSUFFICIENT_STOCK": 5}
    item = Item.objects.get(item_id="ITEM-RACE")
    assert (item.on_hand, item.reserved) == (5, 5)
    assert SalesOrder.objects.count() == 5
    assert len({r["sales_id"] for r in results if isinstance(r, dict)}) == 5


@pytest.mark.django_db(transaction=True)
def test_rate_limit_is_shared_by_two_processes(tmp_path: Path, writer, erp):
    limit, calls_each = 7, 10  # each process alone would get 7; together they must get 7, not 14
    go = tmp_path / "go"
    env = subprocess_env(RATE_LIMIT_PER_MINUTE=str(limit), AX_TEST_CLOCK=str(60.0 * 29_000_000 + 30))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKLOAD, "writer", str(calls_each), str(go)],
            env=env,
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:  # both are connected and waiting before either starts
            assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        go.touch()
        outputs = [worker.communicate(timeout=SUBPROCESS_TIMEOUT) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    totals: Counter[str] = Counter()
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
        totals.update(json.loads(stdout.strip().splitlines()[-1]))
    assert totals == {"ok": limit, "RATE_LIMITED": 2 * calls_each - limit}
    assert AuditEntry.objects.filter(tool="ax_get_customer", success=True).count() == limit


@pytest.mark.django_db(transaction=True)
def test_open_circuit_is_seen_by_another_process(settings, monkeypatch, writer, erp):
    settings.CIRCUIT_FAILURE_THRESHOLD = 2
    settings.CIRCUIT_RESET_SECONDS = 300

    def backend_down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "get_customer", backend_down)
    for _ in range(2):
        result = call_as("writer", "ax_get_customer", {"customer_account": "CUST-001"})
        assert isinstance(result, ToolError) and result.code == "BACKEND_UNAVAILABLE"
    assert breaker.state() == "open"

    command = [
        sys.executable,
        "manage.py",
        "call_tool",
        "ax_get_customer",
        '{"customer_account": "CUST-001"}',
        "--user",
        "writer",
    ]

    def run_command() -> subprocess.CompletedProcess:
        return subprocess.run(
            command,
            env=subprocess_env(),
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )

    refused = run_command()
    assert refused.returncode == 1, refused.stderr
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "CIRCUIT_OPEN"
    assert 1 <= error["retry_after"] <= 300
    # The child's backend is healthy: only the shared state refused it. Once that is cleared it works.
    breaker.reset()
    answered = run_command()
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert json.loads(answered.stdout)["customer_account"] == "CUST-001"


@pytest.mark.django_db(transaction=True)
def test_batch_operations_that_write_really_overlap(writer, erp):
    """On PostgreSQL the operations of a batch run on max_parallel threads at once, each in its own
    transaction, also when they write: four of them hold their transactions open together."""
    from core.accounts.roles import MCP_WRITE
    from core.tools import registry
    from core.tools.registry import obj, register

    lock, running, peak = threading.Lock(), [0], [0]
    all_in = threading.Barrier(4, timeout=10)

    def writes_and_waits(args, ctx):
        AuditEntry.objects.create(tool="probe", success=True)  # a write inside the operation's transaction
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            all_in.wait()  # only returns once four operations are inside their transactions together
        finally:
            with lock:
                running[0] -= 1
        return {}

    register("ax_test_overlap", role=MCP_WRITE, description="test only", schema=obj({}))(writes_and_waits)
    try:
        result = call_tool("ax_batch_operations", {"requests": [{"tool": "ax_test_overlap", "arguments": {}}] * 8,
                                                   "max_parallel": 4}, writer)
    finally:
        registry._TOOLS.pop("ax_test_overlap", None)
    assert result["successful"] == 8, result
    assert peak[0] == 4


@pytest.mark.django_db(transaction=True)
def test_batch_of_orders_on_parallel_threads_never_oversells(writer, erp):
    Item.objects.create(item_id="ITEM-BATCH", name="Scarce", unit_price="10.00", on_hand=30)
    order = {"customer_account": "CUST-001", "lines": [{"item_id": "ITEM-BATCH", "quantity": 1}]}
    result = call_tool("ax_batch_operations", {"requests": [{"tool": "ax_create_salesorder", "arguments": order}] * 40,
                                               "max_parallel": 8}, writer)
    outcomes = Counter("ok" if r["success"] else r["error"] for r in result["results"])
    assert outcomes == {"ok": 30, "INSUFFICIENT_STOCK": 10}
    item = Item.objects.get(item_id="ITEM-BATCH")
    assert (item.on_hand, item.reserved) == (30, 30)
    assert AuditEntry.objects.filter(batch_id=result["batch_id"]).count() == 40
