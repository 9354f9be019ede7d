"""bench/_profile.py: summarising py-spy's folded stacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._profile import (
    AIOKAFKA,
    AIOKAFKA_SEND,
    OTHER,
    busy,
    category,
    function,
    package,
    parse_folded,
    report,
    shares,
)

SITE = "/work/main/.venv/lib/python3.11/site-packages"
FOLDED = (
    f"run (uvicorn/server.py:70);receive (ingest/app.py:117);send ({SITE}/aiokafka/producer/"
    f"producer.py:450) 30\n"
    f"run (uvicorn/server.py:70);receive (ingest/app.py:119) 10\n"
    f"run (uvicorn/server.py:70);_run_once (/root/.pyenv/versions/3.11.7/lib/python3.11/"
    f"asyncio/base_events.py:1900);0x7f00 (libc.so.6) 60\n"
)


def test_lines_become_stacks_with_counts() -> None:
    stacks = parse_folded(FOLDED + "garbage\n")
    assert [count for _, count in stacks] == [30, 10, 60]
    assert stacks[0][0][-1].startswith("send (")


def test_functions_drop_line_numbers_and_packages_are_named() -> None:
    assert function("receive (ingest/app.py:117)") == "receive (ingest/app.py)"
    assert package(f"send ({SITE}/aiokafka/producer/producer.py:450)") == "aiokafka"
    assert package("_run_once (/usr/lib/python3.11/asyncio/base_events.py:1)") == "asyncio"
    assert package("receive (ingest/app.py:117)") == "ingest"
    assert package("0x7f00 (libc.so.6)") == "libc.so.6"
    # py-spy's own spelling: the path below the sys.path entry.
    assert package("AIOKafkaConnection.send (aiokafka/conn.py:500)") == "aiokafka"
    assert package("wait (asyncio/tasks.py:418)") == "asyncio"
    assert package("WeakSet.add (_weakrefset.py:85)") == "_weakrefset"


def test_self_and_inclusive_shares() -> None:
    own_package, own, inclusive, total = shares(parse_folded(FOLDED))
    assert total == 100
    assert own_package == {"libc.so.6": 60, "aiokafka": 30, "ingest": 10}
    # Two lines of one function are one function.
    assert inclusive["receive (ingest/app.py)"] == 40
    assert inclusive["run (uvicorn/server.py)"] == 100
    assert own["receive (ingest/app.py)"] == 10


def test_the_report_shares_cpu_per_request(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ingest.folded"
    path.write_text(FOLDED)
    report(path, requests=10_000, server_cpu_s=2.0)
    out = capsys.readouterr().out
    assert "200 us of CPU per request" in out
    assert "libc.so.6" in out and "120.0" in out  # 60 % of 200 us


def test_a_stack_goes_to_its_most_specific_part() -> None:
    handler = ["run (uvicorn/server.py:70)", "IngestApp._store (ingest/app.py:150)"]
    send = [*handler, "RawPublisher.send (ingest/publisher.py:90)",
            f"AIOKafkaProducer.send ({SITE}/aiokafka/producer/producer.py:450)",
            f"get_running_loop ({SITE}/aiokafka/util.py:20)", "getpid (libc.so.6)"]
    assert category(send) == AIOKAFKA_SEND
    assert category(["run (uvicorn/server.py:70)",
                     f"Sender._sender_routine ({SITE}/aiokafka/producer/sender.py:1)"]) == AIOKAFKA
    assert category([*handler, "gc_collect_main (libpython3.11.so.1.0)"]) == "garbage collector"
    assert category(handler) == "ingest: body read, limits, handler"
    assert category([*handler, "Histogram.observe (prometheus_client/metrics.py:600)"]) == (
        "Prometheus metrics")
    assert category(["run (uvicorn/server.py:70)", "Sender._sender_routine "
                     "(aiokafka/producer/sender.py:1)"]) == AIOKAFKA
    assert category(["ProxyHeadersMiddleware.__call__ (uvicorn/middleware/proxy_headers.py:1)",
                     "Router.app (starlette/routing.py:700)"]).startswith("Starlette")
    assert category(["uv_run (core.c)", "0x7f00 (libc.so.6)"]) == OTHER


def test_threads_waiting_on_a_lock_are_idle() -> None:
    waiting = (["_worker (concurrent/futures/thread.py:81)",
                "PyThread_acquire_lock_timed (libpython3.11.so.1.0)"], 5)
    working = (["receive (ingest/app.py:117)"], 3)
    assert busy([waiting, working]) == [working]
