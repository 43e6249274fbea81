"""Start a throw-away hub for a benchmark, on the embedded default (SQLite + ORM broker) or on
PostgreSQL + Redis (bench.profile).

The hub runs in a temporary var directory and, on PostgreSQL, in a database of its own, so
benchmarks never touch the demo database.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from bench.profile import Profile, environment

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                            capture_output=True, text=True)
    return result.stdout


@contextmanager
def running_hub(extra_env: dict[str, str] | None = None, *, worker: int = 0, dispatcher: int = 0,
                profile: Profile | None = None, web: int = 1):
    """Yield (base_url, token, env) for a fresh hub with demo data and an admin token.

    `web` uvicorn processes serve the port (uvicorn --workers); `worker` worker processes
    (manage.py worker) and `dispatcher` webhook dispatchers run beside them (True counts as 1)."""
    with environment(profile or Profile("sqlite")) as base_env:
        port = free_port()
        env = {**base_env, "RATE_LIMIT_PER_MINUTE": "0", "LOG_LEVEL": "WARNING", "PORT": str(port),
               **(extra_env or {})}
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "seed_demo", "--no-history")
        token = manage(env, "create_api_token", "admin", "--role", "MCP_Admin").split()[-1]
        procs = [subprocess.Popen([sys.executable, "-m", "uvicorn", "core.asgi:application", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-access-log", "--log-level", "warning",
                                   *(["--workers", str(web)] if web > 1 else [])],
                                  cwd=ROOT, env=env)]
        for _ in range(int(worker)):
            procs.append(subprocess.Popen([sys.executable, "manage.py", "worker"], cwd=ROOT, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(int(dispatcher)):
            procs.append(subprocess.Popen([sys.executable, "manage.py", "webhook_dispatcher"], cwd=ROOT, env=env,
                                          stdout=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90  # a loaded machine starts slowly
            while True:
                try:
                    requests.get(f"{base}/api/openapi.json", timeout=1)
                    break
                except (requests.ConnectionError, requests.Timeout):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the hub did not start") from None
                    time.sleep(0.1)
            yield base, token, env
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def add_hub_env(parser) -> None:
    """--hub-env NAME=VALUE (repeatable): a setting for the hub's processes, to compare settings in one run."""
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the hub's processes (repeatable), to compare settings; "
                             "e.g. PGOPTIONS='-c synchronous_commit=off'")


def hub_env(args) -> dict[str, str]:
    return dict(item.split("=", 1) for item in args.hub_env)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
