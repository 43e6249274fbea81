"""The shape of the code: dependencies between the apps of core/ point one way."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
# The project's wiring sits on top of everything and may import any app.
WIRING = {"asgi", "wsgi", "urls", "settings"}


def _app(module: str) -> str | None:
    """The app of core/ a dotted module name belongs to; the helpers every app may use (db,
    errors, env, jobs, jsoncodec, retention, spreadsheet) count as one group, "core", and the
    project's wiring (settings, urls, asgi, wsgi) as another, "project"."""
    parts = module.split(".")
    if parts[0] != "core":
        return None
    if len(parts) > 1 and (CORE / parts[1]).is_dir():
        return parts[1]
    return "project" if len(parts) > 1 and parts[1] in WIRING else "core"


def import_graph() -> dict[str, dict[str, set[str]]]:
    """app -> imported app -> the files that import it (every import, also inside functions)."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in CORE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        source = _app(".".join(path.relative_to(CORE.parent).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                target = _app(name)
                if target and target != source:
                    graph[source][target].add(str(path.relative_to(CORE.parent)))
    return graph


def cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """Every cycle of apps (each once, as found by a depth-first walk)."""
    found, done = [], set()

    def walk(app: str, path: list[str]) -> None:
        for target in sorted(graph.get(app, {})):
            if target in path:
                cycle = path[path.index(target):] + [target]
                if frozenset(cycle) not in done:
                    done.add(frozenset(cycle))
                    found.append(cycle)
            else:
                walk(target, [*path, target])

    for app in sorted(graph):
        walk(app, [app])
    return found


def test_the_apps_of_core_import_each_other_one_way_only():
    graph = import_graph()
    described = [" -> ".join(cycle) + "  (" + "; ".join(
        f"{a}->{b}: {', '.join(sorted(graph[a][b]))}" for a, b in zip(cycle, cycle[1:], strict=False)) + ")"
        for cycle in cycles(graph)]
    assert not described, "import cycles between apps:\n" + "\n".join(described)


def test_audit_is_a_leaf_and_the_tools_framework_imports_no_area():
    graph = import_graph()
    assert set(graph["audit"]) <= {"core"}
    assert not graph["core"], dict(graph["core"])  # the shared helpers import no app
    areas = {"erp", "webhooks", "imports", "roi", "ops", "api"}
    assert not set(graph["tools"]) & areas, {a: graph["tools"][a] for a in set(graph["tools"]) & areas}


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b": {"x"}}, "b": {"c": {"y"}}, "c": {"a": {"z"}}, "d": {"a": {"w"}}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
