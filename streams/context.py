"""What every stage of one streams worker shares: its Faust app, topics, settings, metrics.

`app.py` builds it; dedup, the router, the agents and their outputs are given it. It lives
apart from `app.py` so that the arrows run one way: `app.py` imports the stages, the stages
import only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import faust

    from qikflow.config import KafkaSettings
    from qikflow.topics import Topics
    from streams._metrics import StreamsMetrics
    from streams.budget import WorkerBudget
    from streams.settings import StreamsSettings


@dataclass(frozen=True, slots=True)
class StreamsApp:
    """One worker's Faust app with what its agents share, and the sizes of what it writes."""

    app: faust.App
    topics: Topics
    settings: StreamsSettings
    kafka: KafkaSettings
    metrics: StreamsMetrics
    budget: WorkerBudget
    # The state tables dedup folds each routed event into (`_state_table.py`), added by
    # the modules that define them as the app is built.
    states: list[Any] = field(default_factory=list)
