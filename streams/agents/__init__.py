"""Stream agents, discovered automatically: one module per agent in this package.

Every module here whose name does not start with `_`, plus the modules named in
`QIKFLOW_STREAMS_EXTRA_AGENTS`, is imported when the app is built and its
`register(streams)` is called. Most agents are one `event_agent(...)` call: a pure handler
from an event to the records it emits. The handler sees the per-type topics, after dedup,
exactly as another service would; `docs/agents.md` walks through writing one.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streams._output import Output
from streams.events import Event

if TYPE_CHECKING:
    from streams.context import StreamsApp

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Emit:
    """One record an agent sends: full topic name, key, value and extra headers."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


# A plain function: one event in, the records to send out. Agents that must do I/O can
# declare their own Faust agent in `register` instead.
Handler = Callable[[Event], Iterable[Emit]]


class AgentDiscoveryError(RuntimeError):
    """An agent module cannot be loaded or has no `register(streams)`."""


def event_agent(
    streams: StreamsApp, *, name: str, event_types: Sequence[str], handle: Handler,
    decode: Callable[[bytes], Any] = Event.from_json,
) -> None:
    """Run `handle` on every event of `event_types` and send what it returns.

    `decode` reads a record's value: `Event.from_json`, or `NoticeEvent.from_json` for the
    topics of notices (`streams/notices.py`).

    Events come in batches as they arrive (`take_arriving`, `streams/_take.py`). An
    exception from `handle` sends that one record, unchanged, to `<prefix>.dlq` with
    `qikflow-error` and `qikflow-failed-agent` headers, and the agent goes on with the
    next. A record is acked only once all it emitted is delivered.
    """
    app = streams.app
    settings = streams.settings
    source = app.topic(
        *(streams.topics.event(event_type) for event_type in event_types),
        key_serializer="raw",
        value_serializer="raw",
    )
    output = Output(streams, name)
    emitted = streams.metrics.emitted.labels(agent=name)

    async def run(stream: Any) -> None:
        async for events in stream.take_arriving(settings.batch_size, settings.batch_within_s):
            for event in events:
                delivery = output.start(event.message)
                try:
                    for record in handle(decode(event.message.value)):
                        headers = [*record.headers]
                        await output.send(delivery, record.topic, record.key, record.value, headers)
                        emitted.inc()
                except Exception as exc:  # noqa: BLE001 - any failure dead-letters this record
                    await output.fail(delivery, exc)
                finally:
                    delivery.close()

    app.agent(source, name=name)(run)


def agent_modules(extra: Sequence[str] = ()) -> list[str]:
    """The modules to load: this package's public modules, then `extra`."""
    found = [
        f"{__name__}.{module.name}"
        for module in pkgutil.iter_modules(__path__)
        if not module.name.startswith("_")
    ]
    return [*sorted(found), *extra]


def register_agents(streams: StreamsApp) -> list[str]:
    """Import every agent module and register its agents on the app; returns their names."""
    modules = agent_modules(streams.settings.extra_agent_modules())
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise AgentDiscoveryError(f"cannot import agent module {name}: {exc}") from exc
        register = getattr(module, "register", None)
        if not callable(register):
            raise AgentDiscoveryError(f"agent module {name} has no register(streams) function")
        register(streams)
        logger.info("registered agents of %s", name)
    return modules
