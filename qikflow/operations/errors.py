"""Errors of the operator actions: each says what happened and what was kept.

`retriable` tells a caller whether the same action may succeed later unchanged (Kafka or
PostgreSQL was away), as aiokafka's errors do; the others need different input.
"""

from __future__ import annotations


class OperationError(Exception):
    """Root of every error an operator action raises on purpose."""

    retriable = False


class BadInputError(OperationError):
    """An id, a time, a filter or a cursor the action cannot use; nothing was done."""


class UnknownIdError(BadInputError):
    """No record, row or dead letter has this id."""


class KafkaUnavailableError(OperationError):
    """Kafka did not answer, or refused a request; the message says what was kept."""

    retriable = True


class DatabaseUnavailableError(OperationError):
    """PostgreSQL did not answer or is not configured."""

    retriable = True


class SinkRunningError(OperationError):
    """A replay was asked while the sink's consumer group has members; nothing moved."""
