"""The drill every fault drill runs: simulated Qikchat load through the whole pipeline, a
fault in the middle, then a reconciliation against the simulator's ground truth.

`make test` runs the short versions. `make drill` sets QIKFLOW_DRILL_SOAK=1: the load runs
longer (`soak_s`) and each drill prints its table (load held, answers by status, answer
times, records lost, copies dropped by dedup).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from qikflow.simulate.reconcile import StageResult
from qikflow.simulate.sender import SendReport
from tests.e2e._pipeline import NO_ANSWER, Pipeline, traffic

RATE_PER_S = 30
DURATION_S = 12
FAULT_AFTER_S = 4
OUTAGE_S = 20

SOAK = os.environ.get("QIKFLOW_DRILL_SOAK", "") not in ("", "0")

Fault = Callable[[Pipeline], Awaitable[None]]


def soak_s(short: float, soak: float) -> float:
    """`short` seconds in `make test`, `soak` under `make drill`."""
    return soak if SOAK else short


async def drill(pipeline: Pipeline, fault: Fault, seed: int, *,
                answers_may_be_lost: bool = False, worker_crashes: bool = False,
                duration_s: float = DURATION_S, name: str = "") -> SendReport:
    """Send load, inject the fault mid-way, then require a clean reconciliation.

    `answers_may_be_lost`: an ingest is killed, so requests it had taken, or sent while the
    only one restarts, get no answer (or a 502 from the proxy; Qikchat would count them as
    failed and send them again); everything acknowledged must still arrive everywhere, and
    no request may get another error status.
    `worker_crashes`: the router worker dies (or loses Kafka) mid-stream; it re-routes what
    it had not committed, so routed copies (same event_id) are reported but allowed. The
    database must still hold every event exactly once.
    Returns the answers, for what a drill checks beyond the reconciliation.
    """
    webhooks, truth = traffic(seed, RATE_PER_S, soak_s(duration_s, max(duration_s, 120.0)))

    async def inject() -> None:
        await asyncio.sleep(FAULT_AFTER_S)
        await fault(pipeline)

    report, _ = await asyncio.gather(pipeline.send(webhooks), inject())
    report = await pipeline.settle_unanswered(report, truth, webhooks)
    assert report.acked(), "no webhook was accepted at all"
    result = await pipeline.reconcile(truth, report, worker_crashed=worker_crashes)
    if answers_may_be_lost:
        assert set(report.status_counts()) <= {200, *NO_ANSWER}, report.status_counts()
        rows = [row for row in result.rows if row.stage != "acked (200)"]
    else:
        rows = result.rows
    print(drill_table(name or fault.__name__, report, rows,
                      copies=sum(1 for w in webhooks if w.duplicate_of is not None
                                 and w.index in report.acked())))
    assert all(row.ok for row in rows), f"\n{result.table()}\nlogs: {pipeline.root / 'logs'}"
    return report


UNANSWERED_SHOWN = 3


def drill_table(name: str, report: SendReport, rows: list[StageResult], copies: int) -> str:
    """One drill's figures, as `make drill` prints them."""
    quantiles = report.latency_quantiles()
    answers = ", ".join(f"{code or 'no answer'}: {count}"
                        for code, count in sorted(report.status_counts().items()))
    routed = next((row for row in rows if row.stage == "routed"), None)
    unanswered = [r for r in report.results if not r.status_code]
    lines = [
        ("load held", f"{len(report.results)} webhooks in {report.elapsed_s:.1f} s "
                      f"({len(report.results) / max(report.elapsed_s, 1e-9):.0f}/s, "
                      f"planned {RATE_PER_S}/s)"),
        ("answers", answers),
        ("answer time", f"p50 {quantiles.get('p50', 0) * 1000:.0f} ms, "
                        f"p99 {quantiles.get('p99', 0) * 1000:.0f} ms, "
                        f"max {quantiles.get('max', 0) * 1000:.0f} ms"),
        ("records lost", str(sum(row.missing for row in rows))),
        ("copies", f"{copies} resent by the simulator, "
                   f"{routed.duplicated if routed else 0} routed twice"),
        # Which requests got no answer, when and why (the first few): what a failed drill
        # is read by. A drill that kills the ingest has many, all alike.
        *((f"no answer #{r.index}", f"sent {r.started_s:.1f} s in, gave up after "
                                    f"{r.latency_s:.1f} s: {r.error or '-'}")
          for r in unanswered[:UNANSWERED_SHOWN]),
        *((("no answer", f"... and {len(unanswered) - UNANSWERED_SHOWN} more"),)
          if len(unanswered) > UNANSWERED_SHOWN else ()),
    ]
    width = max(len(label) for label, _ in lines)
    return "\n".join([f"drill: {name}", *(f"  {label:<{width}}  {value}"
                                          for label, value in lines)])
