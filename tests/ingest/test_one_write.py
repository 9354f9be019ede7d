"""Tests of ingest/_one_write.py: an answer's head goes out with its body, in one write."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import cast

from ingest._one_write import OneWriteTransport


@dataclass
class RecordingTransport:
    writes: list[bytes] = field(default_factory=list)
    closed: bool = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def one_write(method: str) -> tuple[OneWriteTransport, RecordingTransport]:
    transport = RecordingTransport()
    return OneWriteTransport(cast(asyncio.Transport, transport), method), transport


def test_the_head_goes_out_with_the_body() -> None:
    wrapper, transport = one_write("POST")
    wrapper.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # before the answer: never held
    wrapper.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    wrapper.write(b"{}")
    assert transport.writes[1:] == [b"HTTP/1.1 200 OK\r\n\r\n{}"]


def test_an_answer_to_head_is_not_held() -> None:
    wrapper, transport = one_write("HEAD")
    wrapper.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
    assert transport.writes == [b"HTTP/1.1 405 Method Not Allowed\r\n\r\n"]


def test_a_head_given_up_is_written_before_the_close() -> None:
    wrapper, transport = one_write("POST")
    wrapper.write(b"HTTP/1.1 200 OK\r\n\r\n")
    wrapper.close()
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\n"] and transport.closed
    assert wrapper.is_closing()
