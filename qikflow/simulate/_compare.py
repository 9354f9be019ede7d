"""Pure comparisons of what the pipeline should hold with what was found: one row per stage."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from qikflow.simulate.plan import OutboundState

K = TypeVar("K", bound=Hashable)
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class StageResult:
    """One row of the reconciliation table."""

    stage: str
    expected: int | None
    found: int | None
    missing: int = 0
    duplicated: int = 0
    mismatched: int = 0  # in the wrong place (topic, type) or with the wrong final state
    checked: bool = True
    duplicates_fail: bool = True
    note: str = ""
    examples: tuple[str, ...] = ()  # a few keys that are missing or mismatched

    @property
    def ok(self) -> bool:
        if not self.checked:
            return True
        duplicates = self.duplicated if self.duplicates_fail else 0
        return self.missing == 0 and self.mismatched == 0 and duplicates == 0

    @classmethod
    def not_checked(cls, stage: str, why: str) -> StageResult:
        return cls(stage, None, None, checked=False, note=f"not checked: {why}")


def _example(key: object) -> str:
    return key.hex() if isinstance(key, bytes) else str(key)


def compare_counts(
    stage: str,
    expected: Mapping[K, int],
    found: Mapping[K, int],
    *,
    duplicates_fail: bool,
    note: str = "",
) -> StageResult:
    """Each key must be found at least as often as expected; extra copies are duplicates.

    Keys found but not expected are ignored: a shared topic holds other traffic too.
    """
    missing = duplicated = present = 0
    examples: list[str] = []
    for key, want in expected.items():
        have = found.get(key, 0)
        present += min(have, want)
        if have < want:
            missing += want - have
            if len(examples) < EXAMPLES:
                examples.append(_example(key))
        duplicated += max(0, have - want)
    return StageResult(stage, sum(expected.values()), present, missing, duplicated,
                       duplicates_fail=duplicates_fail, note=note, examples=tuple(examples))


def compare_placed(
    stage: str,
    expected: Mapping[K, str],
    found: Mapping[K, Sequence[str]],
    *,
    duplicates_fail: bool = True,
    note: str = "",
) -> StageResult:
    """Each key must be found exactly once, in the expected place (topic, type or table)."""
    missing = duplicated = mismatched = present = 0
    examples: list[str] = []
    for key, place in expected.items():
        places = found.get(key, ())
        if not places:
            missing += 1
            if len(examples) < EXAMPLES:
                examples.append(_example(key))
            continue
        present += 1
        duplicated += len(places) - 1
        if any(seen != place for seen in places):
            mismatched += 1
            if len(examples) < EXAMPLES:
                examples.append(f"{_example(key)} in {','.join(sorted(set(places)))}, "
                                f"expected {place}")
    return StageResult(stage, len(expected), present, missing, duplicated, mismatched,
                       duplicates_fail=duplicates_fail, note=note, examples=tuple(examples))


def compare_outbound(
    expected: Mapping[str, OutboundState], found: Mapping[str, OutboundState]
) -> StageResult:
    """Every outbound message has a row, and its final status and failed flag are right."""
    missing = mismatched = present = 0
    examples: list[str] = []
    for message_id, want in expected.items():
        have = found.get(message_id)
        if have is None:
            missing += 1
            if len(examples) < EXAMPLES:
                examples.append(message_id)
            continue
        present += 1
        if have != want:
            mismatched += 1
            if len(examples) < EXAMPLES:
                examples.append(f"{message_id}: {have.status} failed={have.failed}, "
                                f"expected {want.status} failed={want.failed}")
    return StageResult("outbound state", len(expected), present, missing, 0, mismatched,
                       examples=tuple(examples))


def render_table(rows: Sequence[StageResult]) -> str:
    """The reconciliation table, plain text, one stage a line, examples under it."""
    header = ("stage", "expected", "found", "missing", "duplicated", "mismatched", "result")
    lines = [header]
    for row in rows:
        if not row.checked:
            lines.append((row.stage, "-", "-", "-", "-", "-", row.note))
            continue
        verdict = "ok" if row.ok else "FAIL"
        if row.duplicated and not row.duplicates_fail:
            verdict += " (duplicates allowed)"
        if row.note:
            verdict += f"; {row.note}"
        lines.append((row.stage, str(row.expected), str(row.found), str(row.missing),
                      str(row.duplicated), str(row.mismatched), verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:-1], widths[1:], strict=True)]
        out.append("  ".join(cells) + "  " + line[-1])
    for row in rows:
        if row.examples and not row.ok:
            out.append(f"{row.stage}: e.g. " + "; ".join(row.examples))
    return "\n".join(out)
