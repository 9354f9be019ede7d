"""The overview page's rows: one stage at a time, each figure with its rate over the last
minute and a chart of the last 15 minutes, all from the sampler's history."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from markupsafe import Markup

from qikflow.console.charts import sparkline
from qikflow.console.sampler import Sample, Sampler
from qikflow.topics import Topics

RATE_WINDOW_S = 60.0
AGE_WARN_S = 60.0


@dataclass
class Row:
    label: str
    value: str
    rate: str
    chart: Markup
    state: str = "ok"  # ok, warn, down, idle


@dataclass
class Stage:
    name: str
    rows: list[Row] = field(default_factory=list)


@dataclass
class Overview:
    stages: list[Stage]
    processes: list[tuple[str, str]]  # (name, "up" / "down" / "n members")
    updated: str
    errors: list[str]
    empty: bool


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


class _History:
    def __init__(self, samples: list[Sample], slots: int) -> None:
        self.samples = samples
        self.slots = slots
        self.last = samples[-1] if samples else Sample(time.time())

    def values(self, name: str) -> list[float | None]:
        return [sample.values.get(name) for sample in self.samples]

    def rate(self, name: str) -> float | None:
        """Increase per minute over the last minute (over what history there is, if less)."""
        now = self.last.values.get(name)
        if now is None:
            return None
        then = next((s for s in self.samples if s.at >= self.last.at - RATE_WINDOW_S - 1
                     and name in s.values), None)
        if then is None or then is self.last:
            return None
        before = then.values[name]
        increase = now - before if now >= before else now  # a restarted process counts anew
        return increase * 60.0 / max(self.last.at - then.at, 1.0)

    def counter(self, label: str, name: str, *, warn_when_rising: bool = False) -> Row:
        points = self.values(name)
        steps: list[float | None] = [None if b is None or a is None else (b - a if b >= a else b)
                                     for a, b in zip([None, *points[:-1]], points, strict=True)]
        rate = self.rate(name)
        state = "down" if points and points[-1] is None else "ok"
        if warn_when_rising and rate:
            state = "warn"
        shown = f"{rate:,.0f}/min" if rate is not None else ""
        return Row(label, number(points[-1] if points else None), shown,
                   sparkline(steps[1:], title=f"{label} per sample", slots=self.slots), state)

    def gauge(self, label: str, name: str, *, unit: str = "", warn_above: float | None = None,
              seconds: bool = False) -> Row:
        points = self.values(name)
        value = points[-1] if points else None
        shown = age(value) if seconds else number(value) + unit
        state = "idle" if value is None else (
            "warn" if warn_above is not None and value > warn_above else "ok")
        return Row(label, shown, "", sparkline(points, title=label, slots=self.slots), state)

    def names(self, prefix: str) -> list[str]:
        found: set[str] = set()
        for sample in self.samples:
            found.update(name for name in sample.values if name.startswith(prefix))
        return sorted(found)


def build(sampler: Sampler, topics: Topics) -> Overview:
    samples = list(sampler.samples)
    history = _History(samples, sampler.samples.maxlen or len(samples))
    last = history.last
    prefix = topics.prefix

    ingest = Stage("Ingest (webhooks in)")
    ingest.rows.append(history.counter("webhooks accepted (200)", "ingest.requests.200"))
    for name in history.names("ingest.requests."):
        status = name.rsplit(".", 1)[1]
        if status != "200":
            ingest.rows.append(history.counter(f"refused with {status}", name,
                                               warn_when_rising=True))
    ingest.rows.append(history.gauge("spool depth (bodies)", "ingest.spool", warn_above=0))
    ingest.rows.append(history.gauge("quarantine (bodies)", "ingest.quarantine", warn_above=0))

    raw = Stage(f"Raw topic {prefix}.raw")
    raw.rows.append(history.counter("records written", "topic.raw"))
    raw.rows += _lag_rows(history, topics.router_group, "router")

    routing = Stage("Routing (worker)")
    for name in history.names("topic."):
        suffix = name.removeprefix("topic.")
        if suffix.startswith(("message.", "status.", "contact.")):
            routing.rows.append(history.counter(f"events to {prefix}.{suffix}", name))
    for suffix in ("unknown", "dlq"):
        row = history.gauge(f"held in {prefix}.{suffix}", f"held.{suffix}", warn_above=0)
        row.rate = history.counter("", f"topic.{suffix}").rate
        routing.rows.append(row)
    routing.rows.append(history.counter("copies dropped by dedup", "worker.deduplicated"))
    routing.rows += _lag_rows(history, topics.streams_group, "dedup and agents")

    sinks = Stage("Sinks (stores)")
    for sink in ("postgres", "lake"):
        sinks.rows.append(history.counter(f"{sink}: rows written", f"sink.written.{sink}"))
    sinks.rows.append(history.gauge("lake: Parquet files", "lake.files"))
    row = history.gauge(f"held in {prefix}.sink.dlq", "held.sink.dlq", warn_above=0)
    row.rate = history.counter("", "topic.sink.dlq").rate
    sinks.rows.append(row)
    for sink in ("postgres", "lake"):
        sinks.rows += _lag_rows(history, topics.sink_group(sink), f"{sink} sink")

    processes = [(name, "up" if up else "down") for name, up in last.up.items()]
    for group in topics.groups(("postgres", "lake")):
        members = last.values.get(f"members.{group}")
        if members is not None:
            processes.append((f"group {group}", f"{members:.0f} member(s)"))
    updated = time.strftime("%H:%M:%S", time.localtime(last.at)) if samples else "-"
    return Overview([ingest, raw, routing, sinks], processes, updated, last.errors,
                    not samples)


def _lag_rows(history: _History, group: str, who: str) -> list[Row]:
    return [history.gauge(f"{who}: lag (records)", f"lag.{group}"),
            history.gauge(f"{who}: oldest unread", f"age.{group}", seconds=True,
                          warn_above=AGE_WARN_S)]
