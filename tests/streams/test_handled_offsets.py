"""The re-read guard of dedup: which keyed offsets a worker may skip as already handled."""

from __future__ import annotations

from streams.dedup import HandledOffsets


def test_offsets_handled_in_this_process_are_recognised_when_read_again() -> None:
    handled = HandledOffsets()
    for offset in range(100, 201):
        assert not handled.already(0, offset)
        handled.add(0, offset)
    # Faust seeks back to the committed offset 150 and delivers 150..200 again.
    assert all(handled.already(0, offset) for offset in range(150, 201))
    assert not handled.already(0, 201)
    assert not handled.already(1, 150)  # another partition


def test_a_seek_below_the_first_offset_handled_skips_nothing_it_did_not_handle() -> None:
    handled = HandledOffsets()
    for offset in (100, 101, 102):
        handled.add(0, offset)
    # A replay from 40 (records another worker routed before a crash) is handled in full:
    # adding 40..99 must not make the range cover what is still to be read.
    for offset in range(40, 100):
        assert not handled.already(0, offset)
        handled.add(0, offset)
    assert handled.already(0, 100)


def test_partitions_that_move_to_another_worker_are_forgotten() -> None:
    handled = HandledOffsets()
    handled.add(0, 10)
    handled.add(1, 10)
    handled.keep({1})
    assert not handled.already(0, 10)  # another worker may have handled 11.. meanwhile
    assert handled.already(1, 10)
