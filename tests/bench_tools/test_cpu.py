"""bench/_cpu.py: reading /proc, without timing anything."""

from __future__ import annotations

import os

from bench._cpu import CpuUse, parse_machine, parse_stat, process_cpu_s, tree_cpu_s

# A command name with a space and a ')' of its own: the fields are counted from the last ')'.
STAT = ("4242 (wrk) odd) S 77 4242 4242 0 -1 4194560 1234 0 0 0 350 125 0 0 20 0 2 0 "
        "9999 123456 789 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")


def test_stat_gives_the_parent_and_user_plus_system_ticks() -> None:
    assert parse_stat(STAT) == (77, 350 + 125)


def test_machine_busy_leaves_out_idle_and_iowait_and_counts_guest_once() -> None:
    text = ("cpu  100 5 50 800 40 3 2 0 7 0\n"
            "cpu0 50 2 25 400 20 1 1 0 3 0\n"
            "intr 1 2 3\n")
    busy, total = parse_machine(text)
    assert (busy, total) == (100 + 5 + 50 + 3 + 2, 1000)


def test_this_process_and_its_tree_have_used_some_cpu() -> None:
    own = process_cpu_s(os.getpid())
    assert own > 0
    assert tree_cpu_s(os.getpid()) >= own


def test_a_process_that_is_gone_counts_zero() -> None:
    assert process_cpu_s(2**22 + 1) == 0.0  # above pid_max's largest value


def test_cores_is_cpu_over_wall_time() -> None:
    use = CpuUse(wall_s=10.0, cpu_s={"server": 7.5}, machine_busy=0.9)
    assert use.cores("server") == 0.75
    assert CpuUse(0.0, {"server": 1.0}, 0.0).cores("server") == 0.0
