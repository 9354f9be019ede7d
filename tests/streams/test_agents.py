"""Agent discovery and `event_agent`: every agent module is found, one that cannot be loaded
stops the worker with a clear error, and a handler that raises loses nothing."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from qikflow.config import KafkaSettings
from streams import headers as names
from streams.agents import AgentDiscoveryError, agent_modules
from streams.app import create_app
from streams.events import Event
from streams.settings import StreamsSettings
from tests.streams._worker import event_id, header
from tests.streams.conftest import AFTER_BOOM, RoutingRun


def test_agent_modules_are_discovered_without_registration() -> None:
    assert "streams.agents.optout" in agent_modules()
    assert agent_modules(["tests.streams.failing_agent"])[-1] == "tests.streams.failing_agent"


@pytest.mark.parametrize(
    ("module", "says"),
    [
        ("tests.streams.no_such_agent", "cannot import agent module tests.streams.no_such_agent"),
        ("tests.streams.fixtures", "agent module tests.streams.fixtures has no register(streams)"),
    ],
)
def test_an_agent_module_that_cannot_be_loaded_stops_the_app_with_its_name(
    module: str, says: str, tmp_path: Path
) -> None:
    settings = StreamsSettings(extra_agents=f" {module} ", data_dir=tmp_path)
    with pytest.raises(AgentDiscoveryError, match=re.escape(says)):
        create_app(KafkaSettings(), settings, cluster_id="c1")


def test_an_agent_that_raises_dead_letters_the_event_and_the_worker_goes_on(
    routing_run: RoutingRun,
) -> None:
    failed = [r for r in routing_run.dlq if header(r, names.FAILED_AGENT) == "failing"]
    assert len(failed) == 1
    record = failed[0]
    assert "BoomError: boom in wamid.BOOM1" in (header(record, names.ERROR) or "")
    assert header(record, names.REASON) == "failed"
    assert Event.from_json(record.value).event_id == "wamid.BOOM1"  # the event, unchanged
    assert header(record, names.SOURCE_TOPIC) == routing_run.topics.event("message.text")
    assert routing_run.metrics['qikflow_streams_agent_failures_total{agent="failing"}'] == 1
    # Events after the failure are still routed, and the opt-out agent still ran on them.
    assert "wamid.AFTER1" in {event_id(r) for r in routing_run.events}
    assert "optout:wamid.AFTER1" in {orjson.loads(r.value)["event_id"] for r in routing_run.optout}
    assert AFTER_BOOM in routing_run.bodies
