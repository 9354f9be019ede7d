"""The ingest's HTTP/1.1 protocol: uvicorn's httptools protocol with bounded heads and time.

Written by hand because uvicorn (0.54) bounds none of this for httptools, the parser the
ingest runs for speed (see bench/ingest):

- `h11_max_incomplete_event_size` applies to the h11 protocol only (and answers a
  plain-text 400). httptools buffers a head of any size: one 128 MB header took 231 MB and
  stalled every other answer for about 6 s.
- `timeout_keep_alive` starts only once a response was sent, so a connection that never
  finishes its first head, or trickles a body nobody reads, is held for ever.
- `limit_concurrency` counts only requests whose head is complete, and answers plain text.

So this subclass of `HttpToolsProtocol`, with the limits of `ingest.limits.ConnectionLimits`:

- answers **431** (JSON) and closes when a head passes `max_header_bytes` (URL plus header
  names and values, counted while it streams in, so at most one read past the limit is ever
  buffered) or has more than `max_header_count` fields;
- answers **408** (JSON) and closes when a head is not complete `header_timeout_ms` after
  its first byte; a connection that sends nothing is closed after the keep-alive timeout,
  like an idle one between requests;
- closes the connection when a body the app answered without reading (401, 404, 413, 503)
  has not ended `body_timeout_ms` after the answer (the app times the bodies it reads), and
  arms the keep-alive timeout again when it does end (uvicorn leaves it cancelled);
- closes it when a chunked body's framing and trailers pass `max_header_bytes` plus the
  body's own size (httptools buffers a trailer like a header);
- answers invalid HTTP and upgrade requests with a JSON 400, counted instead of logged each;
- closes connections accepted beyond `max_connections` at once, so that a flood of
  connections cannot take the file descriptors Kafka and the spool need.

Every refusal is counted in `qikflow_ingest_connections_refused_total{reason}` and summed up
in one log line a minute (ingest/refusals.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from ingest._one_write import OneWriteTransport
from ingest.deadlines import Deadline
from ingest.limits import LIMITS_STATE_KEY, ConnectionLimits

# What a header adds to the head besides its name and value: ": " and CRLF.
HEADER_OVERHEAD_BYTES = 4


class _HeadRefused(Exception):
    """Raised in a parser callback to stop at a head that broke a limit."""

    def __init__(self, status: int, reason: str, content: dict[str, Any]) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.content = content


class IngestHttpProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with head, time and connection limits (see the module docstring)."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        limits = app_state.get(LIMITS_STATE_KEY)
        if not isinstance(limits, ConnectionLimits):
            raise RuntimeError(f"IngestHttpProtocol serves the ingest app only: the lifespan "
                               f"state has no {LIMITS_STATE_KEY!r}")
        self.limits = limits
        self._in_head = False  # a head began and is not complete
        self._in_body = False  # the head is complete and the body has not ended
        self._head_bytes = 0  # URL + header names and values (+ overhead) of this head
        self._wire_bytes = 0  # bytes read while in the head
        self._header_count = 0
        self._body_bytes = 0  # body bytes of this message so far
        self._framing_bytes = 0  # the rest of its body's reads: chunk framing, trailers
        self._message_ended = False  # a message ended inside the read being parsed
        self._body_in_read = 0  # body bytes in the read being parsed
        self._deadline: Deadline | None = None
        self._head_started = 0.0  # loop time of the first byte of the head being read

    # -- connection --------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self.limits.refuse("connection_limit", self._peer())
            transport.close()
            return
        # Until its first byte a new connection is as idle as one between requests.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._receive_data(data)
        if self._in_head and self._deadline is None:
            # A head that did not end in this read (most end in the read they began in, and
            # need no timer): due `header_timeout_s` after its first byte.
            self._deadline = Deadline(
                self.loop, self._head_started + self.limits.header_timeout_s - self.loop.time(),
                self._head_timed_out)

    def _receive_data(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if not self._in_body:
            self._start_head()
        was_in_body = self._in_body
        self._message_ended = False
        self._body_in_read = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            if isinstance(error.__context__, _HeadRefused):
                self._refuse(error.__context__)
            else:  # e.g. a path that is not ASCII
                self._refuse_invalid()
            return
        except httptools.HttpParserUpgrade:
            return  # on_headers_complete refused it already
        except httptools.HttpParserError:
            self._refuse_invalid()
            return
        if self._message_ended:
            return
        if self._in_head and not was_in_body:
            # The whole read went into the head.
            self._wire_bytes += len(data)
            if self._wire_bytes > self.limits.max_header_bytes:
                self._refuse(self._head_too_large())
        elif was_in_body:
            # A chunked body's framing and trailers: httptools buffers trailers like
            # headers. They may pass the head limit only by as much as the body itself.
            self._framing_bytes += len(data) - self._body_in_read
            if self._framing_bytes > self.limits.max_header_bytes + self._body_bytes:
                self.limits.refuse("trailer_too_large", self._peer())
                self.transport.close()

    # -- parser callbacks --------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_bytes += len(url)
        if self._head_bytes > self.limits.max_header_bytes:
            raise self._head_too_large()

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            super().on_header(name, value)  # a trailer of a chunked body
            return
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            raise _HeadRefused(431, "too_many_headers", {
                "error": "too_many_headers", "limit": self.limits.max_header_count})
        self._head_bytes += len(name) + len(value) + HEADER_OVERHEAD_BYTES
        if self._head_bytes > self.limits.max_header_bytes:
            raise self._head_too_large()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_deadline()
        self._in_head, self._in_body = False, True
        self._wire_bytes = self._body_bytes = self._framing_bytes = 0
        if self.parser.should_upgrade():
            # The ingest speaks plain HTTP/1.1: no WebSocket, no h2c.
            raise _HeadRefused(400, "upgrade", {"error": "upgrade_not_supported"})
        super().on_headers_complete()
        if self.cycle is not None:
            # Its task has not run yet: every write of its answer goes through this.
            self.cycle.transport = OneWriteTransport(  # type: ignore[assignment]
                self.transport, self.cycle.scope["method"])

    def on_body(self, body: bytes) -> None:
        self._body_in_read += len(body)
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_body = False
        self._message_ended = True
        self._cancel_deadline()
        if (self.cycle is not None and self.cycle.response_complete
                and self.timeout_keep_alive_task is None and not self.transport.is_closing()):
            # Answered before the body ended: the body's reads cancelled the keep-alive
            # timer uvicorn armed with the answer.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._in_body and not self.transport.is_closing():
            # Answered without reading the whole body: it must end soon or we hang up.
            self._cancel_deadline()
            self._deadline = Deadline(self.loop, self.limits.body_timeout_s,
                                      self._body_timed_out)

    # -- limits ------------------------------------------------------------

    def _start_head(self) -> None:
        if self._in_head:
            return
        self._in_head = True
        self._head_bytes = self._wire_bytes = self._header_count = 0
        self._cancel_deadline()
        self._head_started = self.loop.time()

    def _head_too_large(self) -> _HeadRefused:
        return _HeadRefused(431, "header_too_large", {
            "error": "header_too_large", "limit_bytes": self.limits.max_header_bytes})

    def _head_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self._refuse(_HeadRefused(408, "header_timeout", {
            "error": "header_timeout", "limit_ms": round(self.limits.header_timeout_s * 1000)}))

    def _body_timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.limits.refuse("unread_body_timeout", self._peer())
            self.transport.close()

    def _refuse_invalid(self) -> None:
        self._refuse(_HeadRefused(400, "invalid_http", {
            "error": "bad_request", "detail": "not a valid HTTP/1.1 request"}))

    def _refuse(self, refusal: _HeadRefused) -> None:
        """Answer `refusal` as JSON and close the connection."""
        self.limits.refuse(refusal.reason, self._peer())
        self._cancel_deadline()
        self._in_head = self._in_body = False
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head went wrong while an answer is being written: no room for ours.
            self.transport.close()
            return
        body = orjson.dumps(refusal.content)
        head = [STATUS_LINE[refusal.status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: application/json\r\n",
                 b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        self.transport.close()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _peer(self) -> str:
        return self.client[0] if self.client else ""
