"""The last resort when Kafka refuses even a dead letter: exit before the offset is committed.

The router and the Faust agents commit a consumed record only once its outputs, or its
dead letter, are delivered. When the dead letter is refused too, nothing is left that
could keep the record, so the process exits at once with EXIT_UNDELIVERABLE, skipping
every shutdown step that could commit; after a restart the record is read again.
"""

from __future__ import annotations

import logging
import os
from typing import NoReturn

from streams.headers import Located, context

logger = logging.getLogger(__name__)

# Exit status of a worker that stopped because Kafka refused even the dead-letter record
# (EX_TEMPFAIL: try again later).
EXIT_UNDELIVERABLE = 75


def exit_undeliverable(agent: str, source: Located, dlq: str, error: BaseException) -> NoReturn:
    """Even the dead letter was refused: exit at once, before `source` can be committed."""
    logger.critical(
        "agent %s cannot deliver %s even to %s (%r); exiting before its offset is committed, "
        "so it is read again after a restart",
        agent,
        context(source),
        dlq,
        error,
    )
    logging.shutdown()
    os._exit(EXIT_UNDELIVERABLE)
