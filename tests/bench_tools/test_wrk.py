"""bench/_wrk.py: the Lua script wrk runs and the line it prints, without running wrk."""

from __future__ import annotations

import re

import pytest

from bench._wrk import MARKER, lua_string, parse_summary, script


def lua_unescape(literal: str) -> bytes:
    """What Lua makes of a literal of decimal escapes only."""
    assert literal[0] == literal[-1] == '"'
    escapes = re.findall(r"\\(\d{1,3})", literal[1:-1])
    assert "".join(f"\\{e}" for e in escapes) == literal[1:-1]
    return bytes(int(e) for e in escapes)


def test_any_body_survives_the_lua_literal() -> None:
    body = '{"text": "a \\"quote\\", ]]==] and 🙏"}\n\x00'.encode()
    assert lua_unescape(lua_string(body)) == body


def test_the_script_posts_json_with_basic_auth() -> None:
    text = script(b"{}", "bench", "s3cret")
    assert 'wrk.method = "POST"' in text
    assert 'wrk.headers["Authorization"] = "Basic YmVuY2g6czNjcmV0"' in text
    assert 'wrk.headers["Content-Type"] = "application/json"' in text
    assert "function done(summary, latency, requests)" in text


def test_the_summary_line_becomes_figures_in_seconds_and_milliseconds() -> None:
    output = (
        "Running 10s test @ http://127.0.0.1:1/webhooks/qikchat\n"
        "  1 threads and 64 connections\n"
        f'{MARKER}{{"requests":200000,"duration_us":10000000,"p50_us":2500,'
        '"p99_us":9100,"max_us":31000,"status_errors":3,"socket_errors":1}\n'
    )
    result = parse_summary(output, cpu_s=4.0)
    assert result.rps == 20_000
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (2.5, 9.1, 31.0)
    assert result.failed == 4
    assert result.cores == 0.4


def test_output_without_the_summary_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="no QIKFLOW_WRK line"):
        parse_summary("unable to connect to 127.0.0.1:1 Connection refused\n", cpu_s=0.0)
