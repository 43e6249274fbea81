"""Printing the figures of one benchmark run on several profiles side by side (bench.profile),
and running an in-process benchmark once per profile, each in a fresh subprocess.

A benchmark collects its figures per profile as {label: milliseconds} (or another unit); with
two profiles, `side_by_side` prints each figure on both and PostgreSQL / SQLite, against the
scale-out target: no operation more than 2x slower than on SQLite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.profile import Profile, applied

ROOT = Path(__file__).resolve().parent.parent
RATIO_TARGET = 2.0
_RESULT = "RESULT "


def side_by_side(title: str, figures: dict[str, dict[str, float]], *, unit: str = "ms",
                 plain: frozenset[str] = frozenset()) -> None:
    """figures: {profile short name: {label: value}}. With one profile, print nothing (the bench
    printed its own lines); with SQLite and PostgreSQL, one line per label with the ratio.
    Labels in `plain` (speed-ups, counts) are shown on both without a ratio."""
    if len(figures) < 2:
        return
    names = list(figures)
    base, other = names[0], names[1]
    print(f"\n{title}: {base} and {other} side by side ({other} / {base}; target: no operation more than "
          f"{RATIO_TARGET:.0f}x slower)")
    width = max(len(label) for label in figures[base])
    print(f"  {'':{width}}  {base:>12}  {other:>12}  {'ratio':>6}")
    for label, value in figures[base].items():
        theirs = figures[other].get(label)
        if theirs is None:
            continue
        if label in plain:  # a speed-up or a count: shown on both, not a cost to compare
            print(f"  {label:{width}}  {value:>10.1f}{'':3}  {theirs:>10.1f}{'':3}")
            continue
        ratio = theirs / value if value else float("nan")
        verdict = "  over 2x" if ratio > RATIO_TARGET else ""
        print(f"  {label:{width}}  {value:>10.1f} {unit:2}  {theirs:>10.1f} {unit:2}  {ratio:>5.2f}x{verdict}")


def run_children(module: str, profiles: list[Profile], argv: list[str]) -> dict[str, dict[str, float]]:
    """Run `python -m module --child <profile> argv...` once per profile, each in a fresh
    process (so Django is set up with that profile's DATABASE_URL/REDIS_URL); the child's
    output passes through, and its last `RESULT {json}` line is its figures."""
    figures: dict[str, dict[str, float]] = {}
    for profile in profiles:
        spec = json.dumps({"name": profile.name, "database": profile.database, "redis": profile.redis})
        proc = subprocess.Popen([sys.executable, "-m", module, "--child", spec, *argv], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        result = None
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(_RESULT):
                result = json.loads(line[len(_RESULT):])
            else:
                print(line, end="", flush=True)
        if proc.wait() != 0 or result is None:
            raise SystemExit(f"{module} on {profile.short} failed (exit {proc.returncode})")
        figures[profile.short] = result
    return figures


def run_as_child(parser: argparse.ArgumentParser,
                 measure: Callable[[argparse.Namespace, Profile], dict[str, float]]) -> bool:
    """In a child of run_children (`--child <profile> argv...`): measure on that profile (applied
    to this process), hand the figures to the parent and return True; False in the parent."""
    if len(sys.argv) < 3 or sys.argv[1] != "--child":
        return False
    profile = Profile(**json.loads(sys.argv[2]))
    args = parser.parse_args(sys.argv[3:])
    with applied(profile):
        print(_RESULT + json.dumps(measure(args, profile)), flush=True)
    return True
