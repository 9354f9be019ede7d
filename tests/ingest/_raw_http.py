"""Raw HTTP/1.1 over a socket, for tests that trickle, flood or stall on purpose.

httpx cannot send half a head or stop in the middle of a body; these helpers can.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def head(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    """A complete request head (request line, `Host`, the headers, the blank line)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: ingest"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def read_answer(reader: asyncio.StreamReader) -> RawAnswer:
    """One response with a `content-length` body (every answer of the ingest has one)."""
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawAnswer(status, headers, body)


async def closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server still sends until it closes the connection."""
    try:
        return await reader.read()
    except ConnectionError:  # reset, or a broken pipe seen by a write in between
        return b""


async def trickle(writer: asyncio.StreamWriter, data: bytes, interval_s: float) -> int:
    """Send `data` one byte every `interval_s` until it is sent or the server hangs up.

    Returns the bytes sent. The pause is the trickle itself, not a synchronisation.
    """
    sent = 0
    try:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            await asyncio.sleep(interval_s)
    except (ConnectionError, OSError):
        pass
    return sent
