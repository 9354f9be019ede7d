"""A test-only extension module: the worker learns one new event name once a flag file exists.

Loaded with QIKFLOW_STREAMS_EXTRA_AGENTS=tests.console._learner. Until the file named by
LEARNER_FLAG_FILE exists, bodies with `NEW_EVENT` go to `<prefix>.unknown` as today; after,
they are read as incoming messages, as a parser fix deployed later would read them. It
stands for that fix, so a test can re-drive what went to `unknown` and see it recovered.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.parsers import qikchat
from tests.console._webhooks import NEW_EVENT

if TYPE_CHECKING:
    from ingest.record import RawRecord
    from streams.context import StreamsApp

FLAG_ENV = "LEARNER_FLAG_FILE"


def register(streams: StreamsApp) -> None:
    flag = Path(os.environ[FLAG_ENV])
    parse = qikchat.parse_envelope

    def learned(envelope: dict[str, Any], record: RawRecord) -> Any:
        if envelope.get("event") == NEW_EVENT and flag.exists():
            envelope = {**envelope, "event": qikchat.MESSAGE_IN}
        return parse(envelope, record)

    qikchat.parse_envelope = learned
