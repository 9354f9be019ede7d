"""Errors of the ingest package. Each says what happened and what was kept."""

from __future__ import annotations


class IngestError(Exception):
    """Root of ingest errors. `retriable` tells whether trying again may succeed."""

    retriable = False


class IngestConfigError(IngestError):
    """The ingest cannot start with this configuration."""


class SpoolError(IngestError):
    """The local spool could not store a body: it was NOT kept."""

    retriable = True


class SpoolFullError(SpoolError):
    """The spool reached QIKFLOW_SPOOL_MAX_BYTES; the body was not kept."""


class SpoolUnavailableError(SpoolError):
    """The spool's disk refused the write (disk full, read-only, I/O error)."""


class RawTopicTooSmallError(IngestConfigError):
    """`<prefix>.raw` cannot hold a body at QIKFLOW_MAX_BODY_BYTES; the ingest will not start."""


class SpoolUnreadableError(IngestError):
    """A spool file is not a readable spool (not SQLite, corrupt, foreign schema).

    The file is renamed aside, untouched, and draining goes on with the others.
    """
