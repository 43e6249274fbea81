"""The profile a benchmark runs on: the embedded default (SQLite, the ORM broker, a cache per
process) or the scale-out profile (PostgreSQL, django-q2's Redis broker and the shared Redis cache).

Every benchmark takes `--profile sqlite|postgres|both` and `--database URL` / `--redis URL`.
Without `--profile`, the environment decides: DATABASE_URL set (or `--database` given) means
PostgreSQL + Redis, otherwise the embedded default. `both` runs the benchmark once per profile
and prints the figures side by side.

A run never touches an existing database: on PostgreSQL it creates its own database on the
server that `--database` / DATABASE_URL names (default postgres://postgres@127.0.0.1:5432/postgres)
and drops it afterwards; on Redis it claims an empty logical database (1..14) with a marker key
and flushes it afterwards. What a run killed on this host left behind (its process is gone) is
removed by the next run. On SQLite the database lives in the run's temporary AX_VAR_DIR.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
_CLAIM = "axhub-bench:claimed"
_REDIS_DATABASES = range(1, 15)  # 0 is Redis' default and 15 the integration tests'


@dataclass(frozen=True)
class Profile:
    name: str  # "sqlite" or "postgres"
    database: str = ""  # the PostgreSQL server to create the run's database on
    redis: str = ""  # the Redis server

    @property
    def label(self) -> str:
        return "PostgreSQL + Redis" if self.name == "postgres" else "SQLite (embedded default)"

    @property
    def short(self) -> str:
        return "PostgreSQL" if self.name == "postgres" else "SQLite"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("profile")
    group.add_argument("--profile", choices=("sqlite", "postgres", "both"), default=None,
                       help="the embedded default, PostgreSQL + Redis, or both in one run (default: postgres "
                            "when DATABASE_URL or --database is set, else sqlite)")
    group.add_argument("--database", metavar="URL", default=None,
                       help=f"PostgreSQL server to create the run's database on (default DATABASE_URL, else "
                            f"{DEFAULT_DATABASE})")
    group.add_argument("--redis", metavar="URL", default=None,
                       help=f"Redis server (default REDIS_URL, else {DEFAULT_REDIS})")


def profiles(args: argparse.Namespace) -> list[Profile]:
    """The profiles to run, in order (SQLite first when both)."""
    database = args.database or os.environ.get("DATABASE_URL") or ""
    choice = args.profile or ("postgres" if database else "sqlite")
    server = Profile("postgres", database or DEFAULT_DATABASE,
                     args.redis or os.environ.get("REDIS_URL") or DEFAULT_REDIS)
    return {"sqlite": [Profile("sqlite")], "postgres": [server], "both": [Profile("sqlite"), server]}[choice]


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _create_database(server: str) -> tuple[str, str]:
    """A new database for this run; first the databases of runs on this host that were killed
    before they could drop theirs (their process is gone) are dropped."""
    import psycopg

    name = f"axbench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(_with_path(server, "/postgres"), autocommit=True) as conn:
        for (left,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'axbench\\_%'").fetchall():
            pid = left.split("_")[1]
            if pid.isdigit() and not _alive(int(pid)):
                conn.execute(f'DROP DATABASE IF EXISTS "{left}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, _with_path(server, f"/{name}")


def _drop_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_with_path(server, "/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _claim_redis(server: str) -> str:
    import redis

    for number in _REDIS_DATABASES:
        url = _with_path(server, f"/{number}")
        client = redis.Redis.from_url(url)
        try:
            claimed_by = client.get(_CLAIM)
            if claimed_by is not None and claimed_by.isdigit() and not _alive(int(claimed_by)):
                client.flushdb()  # a run killed before it could flush its database
            if client.dbsize() == 0 and client.set(_CLAIM, os.getpid(), nx=True):
                return url
        finally:
            client.close()
    raise SystemExit(f"no empty Redis database among {_REDIS_DATABASES.start}..{_REDIS_DATABASES.stop - 1} on "
                     f"{server}")


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def environment(profile: Profile, var_dir: str | None = None) -> Iterator[dict[str, str]]:
    """The environment of one run on `profile`: os.environ with AX_VAR_DIR (a new temporary
    directory unless given) and, for PostgreSQL + Redis, DATABASE_URL and REDIS_URL naming the
    run's own database and Redis database, both removed on exit."""
    with tempfile.TemporaryDirectory(prefix="axhub-bench-") as temporary:
        env = {**os.environ, "AX_VAR_DIR": var_dir or temporary}
        for name in ("DATABASE_URL", "REDIS_URL"):
            env.pop(name, None)
        if profile.name == "sqlite":
            yield env
            return
        name, database_url = _create_database(profile.database)
        redis_url = ""
        try:
            redis_url = _claim_redis(profile.redis)
            yield {**env, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        finally:
            if redis_url:
                _flush_redis(redis_url)
            _drop_database(profile.database, name)


@contextmanager
def applied(profile: Profile) -> Iterator[dict[str, str]]:
    """environment() applied to this process's os.environ (for benchmarks that run Django in
    process), restored on exit."""
    saved = dict(os.environ)
    with environment(profile) as env:
        os.environ.clear()
        os.environ.update(env)
        try:
            yield env
        finally:
            os.environ.clear()
            os.environ.update(saved)
