"""Errors of the streams package that stop a worker at start. Each says what to change."""

from __future__ import annotations


class StreamsError(Exception):
    """Root of the streams worker's errors. `retriable` tells whether trying again may help."""

    retriable = False


class TopicTooSmallError(StreamsError):
    """A topic the worker writes takes smaller records than the worker can write; the
    worker does not start, so nothing is read and nothing is lost."""


class TopicPartitionsError(StreamsError):
    """A state topic has not as many partitions as the keyed topic: it is its table's
    changelog, partition for partition (`_state_table.py`); the worker does not start."""


class RecordTooLargeError(StreamsError):
    """A record the worker would write is larger than the budget of its topic
    (`budget.py`); the record it came from is dead-lettered instead."""
