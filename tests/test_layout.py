"""Imports follow the data flow: ingest -> streams -> sinks, shared modules below all three."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "streams", "sinks")
# What each stage may import of the others (a prefix of a module name).
ALLOWED_STAGE_IMPORTS = {
    "ingest": (),
    "streams": ("ingest.record",),
    "sinks": ("streams",),
}
# Development tooling and the command line: never needed by a stage in production.
TOOLING = ("qikflow.local", "qikflow.simulate", "qikflow.cli", "qikflow.tail")
# The shared modules of qikflow/ every stage may use; they import no stage.
SHARED = ("qikflow/config.py", "qikflow/_logging.py", "qikflow/topics.py", "qikflow/basic_auth.py",
          "qikflow/kafka_admin.py")


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at the top, inside functions or under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_each_stage_imports_only_what_comes_before_it_and_no_tooling() -> None:
    wrong: list[str] = []
    for stage in STAGES:
        for path in sorted((ROOT / stage).rglob("*.py")):
            for module in imports_of(path):
                other = module.split(".")[0]
                if other in STAGES and other != stage and not any(
                    _within(module, allowed) for allowed in ALLOWED_STAGE_IMPORTS[stage]
                ) and not any(_within(allowed, module) for allowed in
                              ALLOWED_STAGE_IMPORTS[stage]):
                    wrong.append(f"{path.relative_to(ROOT)} imports {module}")
                if any(_within(module, tool) for tool in TOOLING):
                    wrong.append(f"{path.relative_to(ROOT)} imports tooling {module}")
    assert wrong == []


def test_shared_modules_import_no_stage() -> None:
    wrong = [
        f"{name} imports {module}"
        for name in SHARED
        for module in imports_of(ROOT / name)
        if module.split(".")[0] in STAGES
    ]
    assert wrong == []
