"""`qikflow down`: stop the stack a `qikflow up` left running, in pipeline order.

A live `up` gets SIGTERM and runs its own ordered stop (ingest, worker, sinks, then the
local services it started). What outlives it, because it was killed or did not finish in
time, is stopped here from its record (`<home>/up.json`) in the same order. With nothing
running it says so and succeeds, so it can be run twice.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from qikflow.local._process import stop_pid
from qikflow.local._stack import StackRecord
from qikflow.local.up import stop_services

logger = logging.getLogger(__name__)


def run_down(home: Path) -> int:
    """Stop what the `qikflow up` recorded in `home` started; 0 when nothing is left."""
    record = StackRecord.read(home)
    if record is None:
        print(f"qikflow down: nothing is running (no qikflow up stack recorded in {home})")
        return 0
    if record.up.alive():
        print(f"qikflow down: stopping the {record.describe()} stack: console, ingest, "
              "worker, sinks, then the local services it started ...", flush=True)
        budget_s = record.stop_budget_s()
        if not stop_pid(record.up.pid, budget_s):
            logger.error("qikflow up (pid %d) did not finish its stop within %.0fs; killed it; "
                         "stopping what it left", record.up.pid, budget_s)
        # A finished `up` removed its record; one still here lists what is left.
        record = StackRecord.read(home)
        if record is None:
            print("qikflow down: stopped")
            return 0
    children = [child for child in record.children if child.alive()]
    services = [service for service in record.services if service.running(home)]
    if not children and not services:
        StackRecord.remove(home)
        print(f"qikflow down: nothing is running; the {record.describe()} had ended without "
              "clearing its record, now removed")
        return 0
    for child in children:
        print(f"qikflow down: stopping {child.name} (pid {child.pid})", flush=True)
        if not stop_pid(child.pid, child.stop_timeout_s):
            logger.warning("%s (pid %d) ignored SIGTERM for %.0fs; killed it", child.name,
                           child.pid, child.stop_timeout_s)
    for service in services:
        print(f"qikflow down: stopping {service.describe()}", flush=True)
    if not stop_services(home, services):
        print("qikflow down: some local services did not stop (see above); their record "
              f"stays in {StackRecord.path(home)}", file=sys.stderr)
        return 1
    StackRecord.remove(home)
    print(f"qikflow down: stopped what the {record.describe()} left running")
    return 0
