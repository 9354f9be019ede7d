"""The import graph of `streams/`: arrows run one way, the worker alone builds the app, and
the plain-aiokafka routing path does not pull in Faust's ack tracking.

Every import counts as an arrow, at the top, inside a function or under TYPE_CHECKING: a
reader follows them all. A submodule's import does not count as an arrow to its package
(`streams.parsers.meta` importing `streams.parsers.json_fields` runs `streams.parsers`
first, which Python allows and no reader follows).
"""

from __future__ import annotations

import graphlib
from pathlib import Path

from tests.test_layout import ROOT, imports_of

PACKAGE = ROOT / "streams"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of `streams/` and the modules of `streams/` it imports."""
    paths = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        imported = {module for module in imports_of(path) if module in paths}
        # `from streams.parsers import meta` names a submodule: the package is no arrow.
        graph[name] = {module for module in imported - {name}
                       if not any(other.startswith(module + ".") for other in imported)}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for module in graph[todo.pop()] - seen:
            seen.add(module)
            todo.append(module)
    return seen


def test_the_modules_of_streams_import_one_another_without_a_cycle() -> None:
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as cycle:
        raise AssertionError(f"import cycle: {' -> '.join(cycle.args[1])}") from cycle


def test_only_the_worker_imports_the_app() -> None:
    importers = {name for name, imported in import_graph().items() if "streams.app" in imported}
    assert importers == {"streams.worker"}


def test_the_router_and_the_keyed_codec_do_not_import_faust_ack_tracking() -> None:
    graph = import_graph()
    assert "streams._output" not in reachable(graph, "streams.router")
    assert "streams._output" not in reachable(graph, "streams._keyed")
