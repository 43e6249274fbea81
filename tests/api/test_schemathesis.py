"""The contract fuzzed by a tool that did not write it: schemathesis against /api/openapi.json.

The real ASGI app serves on a port (tests.livehub); schemathesis (its CLI, in a subprocess)
reads the document, generates valid and invalid requests for every operation and runs every
check it has: no 5xx, each status and header documented, each body fitting its schema, invalid
data refused, valid data accepted (tests/api/schemathesis_hooks.py says what that means here).
A few examples per operation, a fixed seed and a time cap keep it a unit test; for a longer hunt
set AX_FUZZ_EXAMPLES (e.g. 200) and AX_FUZZ_SEED.

Tools that reach the network are left out: subscribing or re-pointing a webhook resolves its
host name, and a test event or a retry sends a request.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.accounts.models import ApiToken
from core.accounts.roles import MCP_ADMIN
from core.tools.registry import find_tool
from tests import livehub

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
NETWORK_TOOLS = ("ax_subscribe_webhook", "ax_update_webhook", "ax_send_test_webhook", "ax_retry_webhook_delivery")
EXAMPLES_PER_OPERATION = int(os.environ.get("AX_FUZZ_EXAMPLES", "10"))
SEED = os.environ.get("AX_FUZZ_SEED", "20261202")
TIME_CAP_SECONDS = 150
# Valid data may meet a business rule JSON Schema cannot state (422); the hooks module refuses
# the 422s that would mean the schema lied.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]
"""


@pytest.fixture
def fuzz_settings(settings, tmp_path):
    settings.RATE_LIMIT_PER_MINUTE = 0  # thousands of requests from one token
    settings.API_AUTH_FAILURE_LIMIT = 0  # schemathesis sends bad tokens on purpose (ignored_auth)
    settings.MEDIA_ROOT = tmp_path / "media"


def test_the_api_keeps_its_openapi_contract(fuzz_settings, admin, erp, tmp_path):
    assert all(find_tool(name) for name in NETWORK_TOOLS), "a network tool was renamed: update NETWORK_TOOLS"
    token = ApiToken.issue(admin, MCP_ADMIN)[1]
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config), "run",
        "--checks", "all", "--mode", "all", "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", SEED,
        "--generation-database", "none", "--workers", "1", "--request-timeout", "20", "--no-color",
        "--header", f"Authorization: Bearer {token}",
        # A new connection per request: on a kept-alive one, each answer waits ~40 ms for a delayed ACK
        # (the live hub's pre-bound socket has Nagle's algorithm on), which would triple the run time.
        "--header", "Connection: close",
        *[arg for name in NETWORK_TOOLS for arg in ("--exclude-operation-id", name)],
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    with livehub.serve() as url:
        started = time.monotonic()
        run = subprocess.run([*command, f"{url}/api/openapi.json"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=TIME_CAP_SECONDS)
        took = time.monotonic() - started
    report = run.stdout + run.stderr
    print(f"schemathesis took {took:.0f} s\n{report}")
    assert run.returncode == 0, report[-20000:]
