"""Ports for brokers the tests start themselves, below Linux's ephemeral range."""

from __future__ import annotations

import socket

from qikflow.local._process import free_port


def broker_port() -> int:
    """A free port whose neighbour is free too: a LocalKafka listens on both (the broker on
    the port, its controller on the next one)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
