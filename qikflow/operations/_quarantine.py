"""The ingest's quarantine (`ingest/quarantine.py`) read as dead letters.

The quarantine is one local SQLite file in the spool directory, so the operator tools
read it where the ingest runs. Its listing holds no bodies; bodies are read for the
letters shown or re-driven (and for a `type` filter, which needs them), a chunk at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from ingest.quarantine import FILE_NAME, Quarantine, QuarantinedBody
from ingest.record import RECEIPT_ID
from ingest.spool_file import decode
from qikflow.operations.dead_letters import (
    QUARANTINE,
    Cursor,
    DeadLetter,
    DeadLetterFilter,
    Page,
)
from qikflow.operations.pipeline import Pipeline

CHUNK = 200


def opened(pipeline: Pipeline) -> Quarantine | None:
    """The quarantine of the pipeline's spool directory; None when there is none (never
    creates one)."""
    if not (pipeline.spool_dir / FILE_NAME).exists():
        return None
    return Quarantine.open(pipeline.spool_dir)


def letter(entry: QuarantinedBody) -> DeadLetter:
    record = decode(entry.meta, entry.body)
    headers = record.headers() if record is not None else [(RECEIPT_ID, entry.receipt_id.encode())]
    return DeadLetter(QUARANTINE, "", -1, -1, entry.quarantined_at_ms, None, entry.body,
                      headers, entry.size, entry.reason)


def _with_bodies(quarantine: Quarantine, letters: list[DeadLetter]) -> list[DeadLetter]:
    ids = [one.receipt_id for one in letters]
    return [letter(entry) for entry in quarantine.entries(ids, with_bodies=True)]


def _matching(quarantine: Quarantine, selection: DeadLetterFilter) -> Iterator[DeadLetter]:
    """Matching letters in the order they came; with bodies only when the filter needs them."""
    listed = (letter(entry) for entry in quarantine.entries())
    if not selection.type:
        yield from (one for one in listed if selection.matches(one))
        return
    without_type = dataclasses.replace(selection, type="")
    candidates = [one for one in listed if without_type.matches(one)]
    for start in range(0, len(candidates), CHUNK):
        for one in _with_bodies(quarantine, candidates[start:start + CHUNK]):
            if selection.matches(one):
                yield one


def read_page(pipeline: Pipeline, selection: DeadLetterFilter, *, cursor: Cursor | None,
              size: int) -> Page:
    quarantine = opened(pipeline)
    if quarantine is None:
        return Page([], None, 0, 0)
    skip = (cursor or {}).get(-1, 0)
    matches = list(_matching(quarantine, selection))
    shown = _with_bodies(quarantine, matches[skip:skip + size])
    more = skip + size < len(matches)
    held = quarantine.count()
    return Page(shown, {-1: skip + size} if more else None, held, held)


def each_match(pipeline: Pipeline, selection: DeadLetterFilter
               ) -> Iterator[tuple[list[DeadLetter], int]]:
    """The matching letters a chunk at a time, with bodies; and how many match in all."""
    quarantine = opened(pipeline)
    if quarantine is None:
        return
    matches = list(_matching(quarantine, selection))
    for start in range(0, len(matches), CHUNK):
        yield _with_bodies(quarantine, matches[start:start + CHUNK]), len(matches)


def picked(pipeline: Pipeline, receipt_ids: list[str]) -> list[DeadLetter]:
    quarantine = opened(pipeline)
    if quarantine is None or not receipt_ids:
        return []
    return [letter(entry) for entry in quarantine.entries(receipt_ids, with_bodies=True)]


def remove(pipeline: Pipeline, receipt_ids: list[str]) -> None:
    """Take re-driven bodies out of the quarantine (only once Kafka has them)."""
    quarantine = opened(pipeline)
    if quarantine is not None and receipt_ids:
        quarantine.remove(receipt_ids)
