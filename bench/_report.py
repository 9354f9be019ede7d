"""Shared printing and result files for the benchmarks."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import orjson

RESULTS_DIR = Path("bench/results")


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def write_results(name: str, figures: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_bytes(orjson.dumps({"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                   time.gmtime()), "machine": machine(), **figures},
                                  option=orjson.OPT_INDENT_2))
    print(f"figures written to {path}")
    return path
