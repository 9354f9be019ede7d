"""Tests of streams/contact_window.py: a window opens, extends, moves its start back for a
late message that reaches into it, and never shortens, in every order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.contact_window import WINDOW, ContactWindow

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def at(hours: float, message_id: str = "") -> ContactWindow:
    when = T0 + hours * HOUR
    return ContactWindow("acme", "+919800000001", when, when, message_id or f"m{hours}")


def folded(*messages: ContactWindow) -> ContactWindow:
    window = messages[0]
    for message in messages[1:]:
        window = window.extend(message)
    return window


def test_a_message_opens_a_window_of_24_hours() -> None:
    window = at(0)
    assert window.closes_at == T0 + WINDOW
    assert window.is_open(T0 + 23 * HOUR) and not window.is_open(T0 + 24 * HOUR)


def test_a_later_message_extends_it_and_keeps_its_start() -> None:
    window = folded(at(0), at(5, "later"))
    assert (window.opened_at, window.closes_at, window.last_message_id) == (
        T0, T0 + 29 * HOUR, "later")


def test_a_message_after_it_closed_opens_a_new_window() -> None:
    window = folded(at(0), at(24))
    assert (window.opened_at, window.closes_at) == (T0 + 24 * HOUR, T0 + 48 * HOUR)


def test_a_late_message_that_reaches_into_it_moves_its_start_back() -> None:
    assert folded(at(0), at(-3)).opened_at == T0 - 3 * HOUR
    assert folded(at(0), at(-3)).closes_at == T0 + WINDOW


def test_a_late_message_of_an_older_window_changes_nothing() -> None:
    window = at(0)
    assert window.extend(at(-25)) is window
    assert window.extend(at(-0.5)).last_message_id == window.last_message_id


def test_a_message_inside_it_changes_nothing() -> None:
    window = folded(at(0), at(5))
    assert window.extend(at(2)) == window


@pytest.mark.parametrize("order", list(itertools.permutations([-30, -0.5, 0, 0.33, 1])))
def test_every_order_of_one_conversation_ends_in_the_same_window(order: tuple[float, ...]
                                                                  ) -> None:
    window = folded(*(at(hours) for hours in order))
    assert (window.opened_at, window.closes_at) == (T0 - 0.5 * HOUR, T0 + 25 * HOUR)


@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=12))
def test_it_never_shortens_and_ends_24_hours_after_the_latest(hours: list[float]) -> None:
    window = at(hours[0])
    for later in hours[1:]:
        extended = window.extend(at(later))
        assert extended.closes_at >= window.closes_at
        assert extended.opened_at <= extended.last_incoming_at
        window = extended
    assert window.closes_at == T0 + max(hours) * HOUR + WINDOW


def test_the_published_form_reads_back() -> None:
    window = folded(at(0), at(2))
    assert ContactWindow.from_json(window.to_json()) == window
    assert window.to_record()["closes_at"] == "2026-11-21T11:00:00Z"
