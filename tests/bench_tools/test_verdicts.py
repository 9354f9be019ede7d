"""The lines bench/ingest and bench/e2e print to judge a run."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bench._cpu import CpuUse
from bench.e2e import cpu_cores, cpu_lines
from bench.ingest import verdicts


def endpoint(rps: float, wrk_cores: float = 0.3, p99_ms: float = 20.0) -> dict[str, Any]:
    return {"rps": rps, "wrk_cores": wrk_cores, "p99_ms": p99_ms, "failed": 0}


def test_a_no_op_well_above_the_ingest_is_headroom_and_both_ratios_print() -> None:
    lines, ratios = verdicts({"(a) no-op": endpoint(20_000, 0.6),
                              "(b) ingest -> Kafka": endpoint(8_000),
                              "(c) hand-written FastAPI": endpoint(5_000),
                              "(d) hand-written, lean": endpoint(10_000)})
    assert ratios["ingest_over_noop"] == 0.4
    assert ratios["ingest_over_handwritten"] == 1.6
    assert ratios["ingest_over_lean"] == 0.8
    assert lines[0].startswith("load generator: wrk used at most 0.60 of a core")
    assert lines[1].startswith("headroom: the no-op reached 2.50x")
    assert "ingest / no-op: 0.40" in lines[2] and "NOT met" in lines[2]
    assert "ingest / hand-written FastAPI: 1.60" in lines[3] and lines[3].endswith(": met)")
    assert "lean hand-written on the ingest's settings: 0.80  (no target" in lines[4]


def test_a_no_op_under_one_and_a_half_times_the_ingest_says_so() -> None:
    lines, _ = verdicts({"(a) no-op": endpoint(11_000, 1.0),
                         "(b) ingest -> Kafka": endpoint(8_000),
                         "(c) hand-written FastAPI": endpoint(5_000),
                         "(d) hand-written, lean": endpoint(5_000)})
    assert lines[1].startswith("NO HEADROOM: the no-op reached only 1.38x the ingest")


def test_the_sender_near_a_full_core_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    use = CpuUse(wall_s=10.0, cpu_s={"ingest": 6.0, "worker": 4.0}, machine_busy=0.5)
    cores = cpu_cores(use, sender_cpu_s=9.0)
    assert cores["sender"] == 0.9 and cores["ingest"] == 0.6 and cores["machine"] == 2.0
    assert cores["other"] == pytest.approx(2.0 - 0.9 - 0.6 - 0.4)
    assert cpu_lines(cores, 12.0)[1].startswith("SENDER NEAR ITS LIMIT")
    busier = cpu_cores(use, sender_cpu_s=7.0)
    assert cpu_lines(busier, 3.0)[1].startswith("SENDER BUSIER THAN THE PIPELINE")
    calm = cpu_cores(use, sender_cpu_s=2.0)
    assert cpu_lines(calm, 3.0)[1] == "the sender is not what saturates first"
    assert "busiest pipeline process: ingest 0.60" in cpu_lines(calm, 3.0)[0]
