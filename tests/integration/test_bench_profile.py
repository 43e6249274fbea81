"""bench.profile: a benchmark on PostgreSQL + Redis gets a database and a Redis database of its
own, and leaves neither behind; on SQLite it never sees the server's settings.

Run with `make test-integration` (DATABASE_URL=postgres://…/test REDIS_URL=redis://…/15).
"""

from __future__ import annotations

import argparse
import os

import psycopg
import pytest
import redis
from django.conf import settings

from bench.profile import Profile, add_arguments, environment, profiles

pytestmark = pytest.mark.integration

if "postgresql" not in settings.DATABASES["default"]["ENGINE"] or not settings.REDIS_URL:
    pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL); run `make test-integration`",
                allow_module_level=True)

SERVER = os.environ["DATABASE_URL"]
REDIS = os.environ["REDIS_URL"].rsplit("/", 1)[0]


def databases() -> set[str]:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database")}


def test_a_postgres_run_has_its_own_database_and_redis_database_and_removes_both():
    before = databases()
    with environment(Profile("postgres", SERVER, REDIS)) as env:
        name = env["DATABASE_URL"].rsplit("/", 1)[1]
        assert name.startswith("axbench_") and name in databases() - before
        assert env["REDIS_URL"] != os.environ["REDIS_URL"]  # never the tests' own Redis database
        client = redis.Redis.from_url(env["REDIS_URL"])
        client.set("left-behind", "1")
        with environment(Profile("postgres", SERVER, REDIS)) as other:  # a second run beside it
            assert other["DATABASE_URL"] != env["DATABASE_URL"] and other["REDIS_URL"] != env["REDIS_URL"]
    assert databases() == before
    assert client.dbsize() == 0
    client.close()


def test_a_sqlite_run_never_sees_the_server_settings():
    with environment(Profile("sqlite")) as env:
        assert "DATABASE_URL" not in env and "REDIS_URL" not in env
        assert os.path.isdir(env["AX_VAR_DIR"])


def test_the_profile_comes_from_the_options_or_the_environment():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert [p.name for p in profiles(parser.parse_args([]))] == ["postgres"]  # DATABASE_URL is set here
    assert [p.name for p in profiles(parser.parse_args(["--profile", "both"]))] == ["sqlite", "postgres"]
    chosen = profiles(parser.parse_args(["--database", "postgres://x@db:5432/y", "--redis", "redis://r:6379"]))
    assert chosen == [Profile("postgres", "postgres://x@db:5432/y", "redis://r:6379")]


def test_what_a_killed_run_left_behind_is_removed_by_the_next_run():
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    left = f"axbench_{dead}_dead01"
    with psycopg.connect(SERVER, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{left}"')
    with environment(Profile("postgres", SERVER, REDIS)) as env:
        assert left not in databases()
        stale = redis.Redis.from_url(env["REDIS_URL"])
        stale.set("axhub-bench:claimed", dead)  # as if that run had claimed this Redis database
        stale.set("left-behind", "1")
        with environment(Profile("postgres", SERVER, REDIS)) as after:
            assert after["REDIS_URL"] == env["REDIS_URL"]  # flushed and claimed again
        stale.close()
