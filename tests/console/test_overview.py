"""The overview's figures from a sampler history: Prometheus text in, rows with rates and
charts out; restarts, gaps and an empty history."""

from __future__ import annotations

from pathlib import Path

from qikflow.config import KafkaSettings
from qikflow.console.charts import sparkline
from qikflow.console.metrics import ConsoleMetrics
from qikflow.console.overview import Row, age, build
from qikflow.console.sampler import HISTORY_S, Sample, Sampler, parse_metrics
from qikflow.console.settings import ConsoleSettings
from qikflow.operations.pipeline import Pipeline
from qikflow.topics import Topics

INGEST_TEXT = """\
# HELP qikflow_ingest_requests_total Webhook requests answered, by HTTP status.
# TYPE qikflow_ingest_requests_total counter
qikflow_ingest_requests_total{status="200"} 40.0
qikflow_ingest_requests_total{status="401"} 2.0
qikflow_ingest_requests_created{status="200"} 1.7e9
# TYPE qikflow_ingest_spool_depth gauge
qikflow_ingest_spool_depth 3.0
"""
SINK_TEXT = """\
# TYPE qikflow_sink_written_records_total counter
qikflow_sink_written_records_total{sink="postgres"} 7.0
"""


def test_metrics_of_several_processes_add_up() -> None:
    values: dict[str, float] = {}
    parse_metrics(INGEST_TEXT, values)
    parse_metrics(INGEST_TEXT, values)  # a second ingest replica
    parse_metrics(SINK_TEXT, values)
    assert values == {"ingest.requests.200": 80.0, "ingest.requests.401": 4.0,
                      "ingest.spool": 6.0, "sink.written.postgres": 7.0}


def _sampler(tmp_path: Path) -> Sampler:
    settings = ConsoleSettings()
    pipeline = Pipeline(KafkaSettings(topic_prefix="qc"), None, tmp_path, tmp_path)
    return Sampler(pipeline, settings.targets(), settings.sample_interval_s,
                   settings.scrape_timeout_ms / 1000, ConsoleMetrics())


def _row(rows: list[Row], label: str) -> Row:
    return next(row for row in rows if row.label == label)


def test_rates_per_minute_over_the_last_minute_and_restarts(tmp_path: Path) -> None:
    sampler = _sampler(tmp_path)
    assert sampler.samples.maxlen == HISTORY_S // 5 + 1  # 15 minutes at the default 5 s
    start = 1_000_000.0
    for i in range(30):  # 150 s, 5 s apart: 10 webhooks a sample, a restart at i == 20
        total = 10.0 * i if i < 20 else 10.0 * (i - 20)
        sampler.samples.append(Sample(start + 5 * i, {
            "ingest.requests.200": total, "ingest.spool": 0.0, "lag.qc-router": 4.0,
            "age.qc-router": 75.0, "held.dlq": 2.0, "topic.dlq": 2.0 + i // 10,
            "topic.message.text": 3.0 * i}, {"ingest": True, "worker": i < 29}))
    overview = build(sampler, Topics("qc"))
    ingest, raw, routing, _ = overview.stages
    accepted = _row(ingest.rows, "webhooks accepted (200)")
    # 12 samples in the last minute, 10 each, less the 10 a restart took with it.
    assert (accepted.value, accepted.rate) == ("90", "110/min")
    assert _row(ingest.rows, "spool depth (bodies)").state == "ok"
    assert _row(routing.rows, "events routed, all types").rate == "36/min"
    assert _row(routing.rows, "to qc.message.text").sub
    assert [row.label for row in routing.rows if row.sub] == ["to qc.message.text"]
    dlq = _row(routing.rows, "held in qc.dlq")
    assert (dlq.value, dlq.state) == ("2", "warn")
    assert _row(raw.rows, "router: oldest unread").value == "1m 15s"
    assert _row(raw.rows, "router: lag (records)").value == "4"
    assert _row(raw.rows, "router: oldest unread").state == "warn"
    assert ("worker", "down") in overview.processes and ("ingest", "up") in overview.processes
    assert not overview.empty


def test_an_empty_history_shows_dashes(tmp_path: Path) -> None:
    overview = build(_sampler(tmp_path), Topics("qc"))
    assert overview.empty and overview.processes == []
    accepted = _row(overview.stages[0].rows, "webhooks accepted (200)")
    assert (accepted.value, accepted.rate) == ("-", "")
    assert "no data yet" in accepted.chart


def test_sparkline_leaves_gaps_and_scales_to_its_peak() -> None:
    svg = sparkline([1.0, None, 3.0, 4.0], title="x <y>", slots=4)
    assert svg.count("<polyline") == 2 and "peak 4" in svg and "x &lt;y&gt;" in svg
    assert "0.0,21.5" in svg  # 1 of 4 sits three quarters down the 30 px chart
    assert age(59) == "59s" and age(3599) == "59m 59s" and age(7260) == "2h 01m"
