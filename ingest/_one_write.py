"""An answer's head and body in one `write()`: half the system calls of uvicorn's two.

uvicorn's `RequestResponseCycle.send` writes the status line and headers on
`http.response.start` and the body on `http.response.body`, and uvloop's `write()` sends
at once when nothing is buffered: two `write` system calls (and two loopback segments) an
answer, about a sixth of the ingest's CPU under load (docs/performance.md). The cycle's
transport is this wrapper instead, which holds the head until the body's write (or a
close) and writes both together. The bytes on the wire are the same. Never held: a
`100 Continue`, written before any answer, and the head of an answer to HEAD, which has
no body write.
"""

from __future__ import annotations

import asyncio
from typing import Any

# What uvicorn writes, before any answer, to a request that expects it.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class OneWriteTransport:
    """The transport of one request-response cycle, holding the answer's head back."""

    __slots__ = ("_head", "_head_seen", "_transport")

    def __init__(self, transport: asyncio.Transport, method: str) -> None:
        self._transport = transport
        self._head: bytes | None = None
        # Known here, not by holding the cycle, which holds this: no reference cycle
        # keeps a request's body alive until the garbage collector runs.
        self._head_seen = method == "HEAD"

    def write(self, data: bytes) -> None:
        if not self._head_seen and data != CONTINUE:
            # The first write of a cycle that is not a 100 Continue is its answer's head.
            self._head_seen = True
            self._head = data
            return
        head, self._head = self._head, None
        self._transport.write(data if head is None else head + data)

    def close(self) -> None:
        head, self._head = self._head, None
        if head is not None:  # an answer given up after its head (uvicorn closes then)
            self._transport.write(head)
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
