"""Ports for the servers the tests start themselves.

Each pytest process (`make test` runs two, `PYTEST_XDIST_WORKER` gw0 and gw1) takes ports
from its own share of 20000-28999, below Linux's ephemeral range (32768+) and apart from
the fixed ports of the shared services (29092-29093, the clusters' 29500-29525, 54330), and
never hands out one port twice: a port given to a process that has not bound it yet still
looks free.
"""

from __future__ import annotations

import os
import socket

from qikflow.local._process import free_port as _any_free_port

LOW, HIGH = 20_000, 29_000
_handed_out: set[int] = set()


def _share() -> tuple[int, int]:
    """The range of ports of this pytest process."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    span = (HIGH - LOW) // max(workers, 1)
    low = LOW + index * span
    return low, low + span


def free_port() -> int:
    """A TCP port nothing is bound to now, not handed out before by this process."""
    low, high = _share()
    while True:
        port = _any_free_port(low, high)
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def broker_port() -> int:
    """A free port whose neighbour is free too: a LocalKafka listens on both (the broker on
    the port, its controller on the next one)."""
    while True:
        port = free_port()
        if port + 1 in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        _handed_out.add(port + 1)
        return port
