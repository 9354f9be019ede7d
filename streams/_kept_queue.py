"""Faust's stream buffers, but a rebalance keeps the records of partitions still assigned.

Faust clears every stream buffer when it resumes the flow after a rebalance or a recovery
(`clear_on_resume`), and relies on seeking each partition back to its committed offset to
read the dropped records again. When the seek comes before the clear (the order of the two
races; faust-streaming#596), the records were fetched again already, the consumer's read
offset is past them, and they are never handed to an agent: lost to this process, and the
partition's commit stops below them for good, since Faust commits only contiguous offsets.
A worker restarted mid-stream lost status callbacks this way (1 run in 3 of
`tests/streams/test_state_agents.py`).

So a clear keeps the records of the partitions the consumer still owns, in order, and drops
only the others, as Faust would. A kept record that Faust's seek also reads again is
handled twice: every agent here takes a record read again (dedup skips it or routes a
copy, the state folds publish nothing new or a copy of the latest state).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from mode.utils.queues import ThrowableQueue

logger = logging.getLogger(__name__)


def _partition_of(item: Any) -> Any:
    """The topic partition of a buffered record (a Faust message or event)."""
    message = getattr(item, "message", item)
    return getattr(message, "tp", None)


class KeptOnResumeQueue(ThrowableQueue[Any]):
    """A ThrowableQueue whose `clear` keeps the records of `assigned()` partitions."""

    def __init__(self, *args: Any, assigned: Callable[[], set[Any]],
                 on_kept: Callable[[int], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._assigned = assigned
        self._on_kept = on_kept

    def clear(self) -> None:
        queue: deque[Any] = self._queue  # type: ignore[attr-defined]  # asyncio.Queue's own
        buffered = list(queue)
        if not buffered:
            super().clear()
            return
        try:
            owned = self._assigned()
        except Exception:  # noqa: BLE001 - a consumer not started owns nothing
            owned = set()
        kept = [item for item in buffered if _partition_of(item) in owned]
        super().clear()
        queue.extend(kept)
        if kept:
            self._on_kept(len(kept))
