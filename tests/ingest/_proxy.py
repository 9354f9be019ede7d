"""A broker behind a TCP proxy that can cut the connections open now without closing them.

That is a half-open network path (a NAT or a firewall that forgot a flow): a client's
existing connections hang, while a new connection reaches Kafka and gets metadata. The
broker advertises the proxy, so every client connection goes through it. The proxy runs
on an event loop in a thread of its own, so tests may block while it carries traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

from qikflow.local.kafka import LocalKafka


@dataclass(frozen=True)
class ProxiedKafka(LocalKafka):
    """A local broker that tells clients to connect to `advertised_port` (the proxy)."""

    advertised_port: int = 0

    @property
    def proxy_bootstrap(self) -> str:
        return f"127.0.0.1:{self.advertised_port}"

    def _write_config(self) -> Path:
        path = super()._write_config()
        own = f"advertised.listeners=PLAINTEXT://{self.bootstrap}"
        text = path.read_text()
        if own not in text:
            raise AssertionError(f"{path} no longer says {own!r}: update ProxiedKafka")
        path.write_text(text.replace(own, f"advertised.listeners=PLAINTEXT://"
                                          f"{self.proxy_bootstrap}"))
        return path


@dataclass
class _Flow:
    cut: bool = False
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class CuttingProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target`; `cut_open_connections()` makes the
    connections open now swallow every byte in both directions, without closing them."""

    def __init__(self, port: int, target: int) -> None:
        self.port = port
        self.target = target
        self._flows: list[_Flow] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._refusing = False

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def cut_open_connections(self) -> int:
        """Cut every connection open now; return how many."""
        return asyncio.run_coroutine_threadsafe(self._cut(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def reset(self, *, refuse_new: bool) -> None:
        """Close the connections open now; with `refuse_new`, close new ones at once too
        (Kafka gone), until reset again with False."""
        asyncio.run_coroutine_threadsafe(self._reset(refuse_new), self._loop).result(10)

    async def _reset(self, refuse_new: bool) -> None:
        self._refusing = refuse_new
        for flow in self._flows:
            for writer in flow.writers:
                writer.close()

    async def _cut(self) -> int:
        for flow in self._flows:
            flow.cut = True
        return len(self._flows)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for flow in self._flows:
            for writer in flow.writers:
                writer.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._carry, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _carry(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            client_writer.close()
            return
        try:
            broker_reader, broker_writer = await asyncio.open_connection("127.0.0.1",
                                                                         self.target)
        except OSError:
            client_writer.close()
            return
        flow = _Flow(writers=[client_writer, broker_writer])
        self._flows.append(flow)
        await asyncio.gather(_pump(client_reader, broker_writer, flow),
                             _pump(broker_reader, client_writer, flow))
        self._flows.remove(flow)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, flow: _Flow) -> None:
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            if flow.cut:
                continue
            sink.write(data)
            await sink.drain()
    with contextlib.suppress(OSError):
        sink.close()
