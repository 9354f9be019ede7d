"""The wheel as a user installs it: not editable, in a fresh venv, with its package data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "streams", "sinks")
PACKAGE_DATA = (
    "sinks/migrations/0001_initial.sql",
    "qikflow/local/kafka-pom.xml",
    "qikflow/py.typed",
    "ingest/py.typed",
    "streams/py.typed",
    "sinks/py.typed",
)


def run(*command: str | Path, cwd: Path = ROOT) -> str:
    result = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_wheel_installs_and_runs_in_a_fresh_venv(tmp_path: Path) -> None:
    # Built from a copy: an in-tree build keeps a build/ folder whose stale modules would
    # end up in the next wheel.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".qikflow", "build", "*.egg-info", "__pycache__", ".*_cache"))
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
        "--wheel-dir", tmp_path / "dist", source)
    (wheel,) = (tmp_path / "dist").glob("qikflow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(PACKAGE_DATA) <= names, set(PACKAGE_DATA) - names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel)
    # Away from the checkout, so nothing is imported from the source tree by accident.
    assert "usage: qikflow" in run(venv / "bin" / "qikflow", "--help", cwd=tmp_path)
    where = run(python, "-c", "import ingest, streams, sinks, qikflow; "
                "print(*(m.__file__ for m in (ingest, streams, sinks, qikflow)))", cwd=tmp_path)
    assert all("site-packages" in path for path in where.split()), where
    owners = run(python, "-c", "import importlib.metadata as m, json; "
                 "d = m.packages_distributions(); "
                 f"print(json.dumps({{n: d.get(n) for n in {list(STAGES)!r}}}))", cwd=tmp_path)
    assert owners.strip() == (
        '{"ingest": ["qikflow"], "streams": ["qikflow"], "sinks": ["qikflow"]}'
    ), owners
    # The migrations are found as package data, not through the checkout.
    count = run(python, "-c", "from sinks.migrate import load_migrations; "
                "print(len(load_migrations()))", cwd=tmp_path)
    assert int(count) >= 2
