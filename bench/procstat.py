"""Where the CPU goes during a benchmark: CPU seconds per process role, read from /proc.

A benchmark takes a `Snapshot` before and after the interval it measures; the difference is
the CPU each role used (user + system time): the hub's processes, which are this process's
descendants (web: uvicorn and its workers; worker: `manage.py worker` with its django-q2
cluster; each `manage.py webhook_dispatcher` on its own), the PostgreSQL backends serving the
run's database and PostgreSQL's own server processes (WAL writer, checkpointer), the Redis
server, this process (the receiver, the HTTP clients) and the rest of the machine.

A process that ended inside the interval takes its CPU with it; the hub's processes and the
database connections (CONN_MAX_AGE) live for the whole run, so that loss is small.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, user + system ticks) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _machine_ticks() -> int:
    """Busy ticks of the whole machine (all cores): everything but idle and iowait."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values[:8]) - values[3] - values[4]


def _role(cmdline: str) -> str:
    if "webhook_dispatcher" in cmdline:
        return "dispatcher"
    if "manage.py worker" in cmdline:
        return "worker"
    if "uvicorn" in cmdline:
        return "web"
    return ""


@dataclass
class Snapshot:
    at: float
    machine: int
    ticks: dict = field(default_factory=dict)  # pid -> ((role, numbered pid), ticks)

    @classmethod
    def take(cls, database: str = "") -> Snapshot:
        """`database`: the run's PostgreSQL database name, whose backends are counted apart."""
        me = os.getpid()
        parents: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                found = _stat(int(name))
                if found:
                    parents[int(name)], ticks[int(name)] = found
        snap = cls(time.monotonic(), _machine_ticks())
        for pid, used in ticks.items():
            role = _classify(pid, me, parents, database)
            if role:
                snap.ticks[pid] = (role, used)
        return snap


_ROLE_OF_TOP: dict[int, str] = {}
_NUMBERED = ("dispatcher", "worker")  # one line per process when there are several


def _classify(pid: int, me: int, parents: dict[int, int], database: str) -> tuple[str, int] | None:
    if pid == me:
        return ("bench process (receiver, clients)", pid)
    # A descendant of this process: the role of its ancestor just below us (uvicorn's workers and
    # django-q2's cluster processes count with the process that started them).
    chain, current = [], pid
    while current in parents and current not in (0, 1, me):
        chain.append(current)
        current = parents[current]
    if current == me and chain:
        top = chain[-1]
        if top not in _ROLE_OF_TOP:
            _ROLE_OF_TOP[top] = _role(_cmdline(top))
        role = _ROLE_OF_TOP[top]
        if role:
            return (role, top if role in _NUMBERED else 0)
        return ("other processes of the bench (clients)", 0)
    cmd = _cmdline(pid)
    if cmd.startswith("postgres:"):
        if database and f" {database} " in cmd:
            return ("PostgreSQL backends", 0)
        return ("PostgreSQL (server processes, other databases)", 0)
    if cmd.startswith("redis-server"):
        return ("Redis", 0)
    return None


def usage(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per role between two snapshots (dispatchers numbered), plus the rest of the
    machine and the wall time."""
    # Per process: one that ended inside the interval is left out (its CPU went with it), one
    # that started inside it counts whole.
    grouped: Counter = Counter()
    for pid, (key, value) in after.ticks.items():
        earlier = before.ticks.get(pid)
        grouped[key] += value - (earlier[1] if earlier and earlier[0] == key else 0)
    result: dict[str, float] = {}
    for (role, pid), value in grouped.items():
        used = value / TICK
        several = sorted(p for r, p in grouped if r == role)
        if role in _NUMBERED and len(several) > 1:
            role = f"{role} {several.index(pid) + 1}"
        result[role] = result.get(role, 0.0) + used
    machine = (after.machine - before.machine) / TICK
    result["rest of the machine"] = max(0.0, machine - sum(result.values()))
    result["wall"] = after.at - before.at
    return result


def describe(cpu: dict[str, float]) -> str:
    """'web 1.2 s (60%), …': CPU seconds and share of one core over the wall time."""
    wall = cpu.get("wall") or 1.0
    parts = [f"{role} {seconds:.1f} s ({100 * seconds / wall:.0f}%)" for role, seconds in
             sorted(cpu.items(), key=lambda kv: -kv[1]) if role != "wall" and seconds >= 0.05]
    busy = sum(v for k, v in cpu.items() if k != "wall")
    return f"{', '.join(parts)}; machine busy {100 * busy / wall / os.cpu_count():.0f}% of {os.cpu_count()} cores"
