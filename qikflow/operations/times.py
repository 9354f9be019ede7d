"""Times an operator types (`--since 2h`, `--until 2026-05-01T10:00Z`) and the range they make.

A time is an ISO 8601 instant (a missing zone means UTC), a date (its midnight, UTC),
`now`, or a duration back from now (`90s`, `15m`, `24h`, `7d`, `2w`). Anything else is a
BadInputError that shows the accepted forms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from qikflow.operations.errors import BadInputError
from sinks.stats import parse_duration

FORMS = "2026-05-01T10:00:00Z, 2026-05-01, now, or a duration back from now such as 15m, 24h, 7d"


def parse_time(text: str, *, name: str = "time", now: datetime | None = None) -> datetime:
    """The instant `text` names, in UTC; `name` (e.g. `--since`) goes into the error."""
    value = text.strip()
    now = now or datetime.now(UTC)
    if not value:
        raise BadInputError(f"{name} is empty: use {FORMS}")
    if value.lower() == "now":
        return now
    if value[-1:].isalpha() and value[:-1].isdigit():
        try:
            return now - parse_duration(value)
        except (ValueError, OverflowError) as error:
            raise BadInputError(f"{name} {value!r} is not a duration: use {FORMS}") from error
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise BadInputError(f"{name} {value!r} is not a time: use {FORMS}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """From `since` (inclusive) to `until` (inclusive); None leaves that end open."""

    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, since: str | None, until: str | None, *,
              now: datetime | None = None) -> TimeRange:
        """The range of two operator-typed times (either may be None or empty)."""
        now = now or datetime.now(UTC)
        start = parse_time(since, name="since", now=now) if since else None
        end = parse_time(until, name="until", now=now) if until else None
        if start is not None and end is not None and start > end:
            raise BadInputError(
                f"since ({start:%Y-%m-%d %H:%M:%S}Z) is after until ({end:%Y-%m-%d %H:%M:%S}Z): "
                "nothing can match; swap them"
            )
        return cls(start, end)

    @property
    def since_ms(self) -> int | None:
        return None if self.since is None else int(self.since.timestamp() * 1000)

    @property
    def until_ms(self) -> int | None:
        return None if self.until is None else int(self.until.timestamp() * 1000)

    def contains_ms(self, moment_ms: int) -> bool:
        since, until = self.since_ms, self.until_ms
        return (since is None or moment_ms >= since) and (until is None or moment_ms <= until)

    def describe(self) -> str:
        if self.since is None and self.until is None:
            return "any time"
        since = f"{self.since:%Y-%m-%d %H:%M:%S}Z" if self.since else "the start"
        until = f"{self.until:%Y-%m-%d %H:%M:%S}Z" if self.until else "now"
        return f"{since} to {until}"


def format_ms(moment_ms: int | None) -> str:
    """An epoch-milliseconds time as `2026-05-01 10:00:00.123Z`, or `-`."""
    if not moment_ms:
        return "-"
    return format_time(datetime.fromtimestamp(moment_ms / 1000, UTC))


def format_time(moment: datetime | None) -> str:
    """A time in UTC as `2026-05-01 10:00:00.123Z` (milliseconds only when it has them)."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    millis = f".{moment.microsecond // 1000:03d}" if moment.microsecond else ""
    return f"{moment:%Y-%m-%d %H:%M:%S}{millis}Z"
