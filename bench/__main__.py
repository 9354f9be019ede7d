"""`python -m bench` (what `make bench` runs): every benchmark, one after the other.

Each runs in its own process and prints its own figures and ratios; JSON copies land in
bench/results/. Pass names to run only some: `python -m bench ingest e2e`.
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ("ingest", "ingest_limits", "streams", "sinks", "e2e", "scaling")


def main() -> int:
    chosen = sys.argv[1:] or list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}")
        return 2
    failed = []
    for name in chosen:
        print(f"\n=== bench/{name} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode:
            failed.append(name)
    if failed:
        print(f"\nbenchmarks that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
