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
    sub: bool = False  # a part of the row above (one topic of all routed events)


@dataclass
class Stage:
    name: str
    rows: list[Row] = field(default_factory=list)


@dataclass
class Overview:
    stages: list[Stage]
    processes: list[tuple[str, str]]  # (name, "up" / "down" / "n members")
    updated: str
    since: str  # the oldest sample kept
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


def _increase(before: float | None, after: float | None) -> float | None:
    """A counter's increase between two samples; a restarted process counts from zero."""
    if before is None or after is None:
        return None
    return after - before if after >= before else after


class _History:
    """The sampler's samples, read as series. Charts span the history there is, from one
    minute up to the 15 minutes kept, so a console that just started draws a readable line."""

    def __init__(self, samples: list[Sample], kept: int, per_minute: int) -> None:
        self.samples = samples
        self.slots = min(kept, max(len(samples), per_minute + 1))
        self.last = samples[-1] if samples else Sample(time.time())

    def values(self, name: str) -> list[float | None]:
        return [sample.values.get(name) for sample in self.samples]

    def summed(self, prefixes: tuple[str, ...]) -> list[float | None]:
        """Per sample, the sum of every series whose name starts with one of `prefixes`."""
        sums: list[float | None] = []
        for sample in self.samples:
            found = [value for name, value in sample.values.items() if name.startswith(prefixes)]
            sums.append(sum(found) if found else None)
        return sums

    def rate(self, points: list[float | None]) -> float | None:
        """Increase per minute over the last minute (over what history there is, if less),
        summed sample to sample so that a restarted process loses nothing counted before."""
        timed = [(sample.at, value) for sample, value in zip(self.samples, points, strict=True)
                 if value is not None and sample.at >= self.last.at - RATE_WINDOW_S - 1]
        if len(timed) < 2 or points[-1] is None:
            return None
        increase = sum(_increase(timed[i - 1][1], timed[i][1]) or 0.0
                       for i in range(1, len(timed)))
        return increase * 60.0 / max(timed[-1][0] - timed[0][0], 1.0)

    def counter(self, label: str, name: str | list[float | None], *,
                warn_when_rising: bool = False) -> Row:
        points = self.values(name) if isinstance(name, str) else name
        steps = [_increase(points[i - 1], points[i]) for i in range(1, len(points))]
        rate = self.rate(points) if points else None
        state = "down" if points and points[-1] is None else "ok"
        if warn_when_rising and rate:
            state = "warn"
        shown = f"{rate:,.0f}/min" if rate is not None else ""
        return Row(label, number(points[-1] if points else None), shown,
                   sparkline(steps, title=f"{label}, per sample", slots=self.slots - 1), state)

    def gauge(self, label: str, name: str, *, warn_above: float | None = None,
              seconds: bool = False, zero: str = "0") -> Row:
        points = self.values(name)
        value = points[-1] if points else None
        shown = (age(value) if seconds else number(value)) if value else (
            zero if value == 0 else "-")
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
    history = _History(samples, sampler.samples.maxlen or len(samples),
                       int(RATE_WINDOW_S / sampler.interval_s))
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
    routed = ("topic.message.", "topic.status.", "topic.contact.")
    routing.rows.append(history.counter("events routed, all types", history.summed(routed)))
    for name in history.names("topic."):
        if name.startswith(routed) and last.values.get(name):
            part = history.counter(f"to {prefix}.{name.removeprefix('topic.')}", name)
            part.sub = True
            routing.rows.append(part)
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
    since = time.strftime("%H:%M:%S", time.localtime(samples[0].at)) if samples else "-"
    return Overview([ingest, raw, routing, sinks], processes, updated, since, last.errors,
                    not samples)


def _lag_rows(history: _History, group: str, who: str) -> list[Row]:
    lag = history.gauge(f"{who}: lag (records)", f"lag.{group}")
    oldest = history.gauge(f"{who}: oldest unread", f"age.{group}", seconds=True,
                           warn_above=AGE_WARN_S)
    if oldest.value == "-" and lag.value == "0":
        oldest.value = "none"
    return [lag, oldest]
