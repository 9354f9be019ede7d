"""A test-only agent that blocks the event loop on the first text saying "block the loop"
(QIKFLOW_STREAMS_EXTRA_AGENTS), and logs every text it sees.

It blocks once per QIKFLOW_HOME: a marker file there makes the next worker only log the
text, which shows that the text was read again."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from streams.agents import Emit, event_agent
from streams.events import Event, TextContent

if TYPE_CHECKING:
    from streams.context import StreamsApp

NAME = "blocking"
BLOCK = "block the loop"
BLOCKING = "blocking agent blocks the loop on"
SAW = "blocking agent saw"

logger = logging.getLogger(__name__)


def block_once(event: Event) -> list[Emit]:
    # INFO: the flood guard lets one WARNING of a template through per 30 s (_logging.py).
    logger.info("blocking agent saw %s", event.message_id)
    marker = Path(os.environ["QIKFLOW_HOME"]) / "blocked-once"
    if isinstance(event.content, TextContent) and BLOCK in event.content.body \
            and not marker.exists():
        marker.touch()
        logger.info("blocking agent blocks the loop on %s", event.message_id)
        time.sleep(3600)  # code that never yields: not even the loop's signal handler runs
    return []


def register(streams: StreamsApp) -> None:
    event_agent(streams, name=NAME, event_types=["message.text"], handle=block_once)
