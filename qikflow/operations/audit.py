"""The audit trail: one JSON line per action that changed something, appended and fsynced.

Who (the console user, or `<os user>@cli`), when, which action, from where, with what
filter, and how many records it moved. The console and the commands write the same file
(`QIKFLOW_CONSOLE_AUDIT_FILE`); a lock keeps lines whole when both write at once. An
action checks that the file is writable before it starts, so nothing moves unrecorded.
"""

from __future__ import annotations

import fcntl
import os
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from qikflow.operations.errors import OperationError

TAIL_BYTES = 1024 * 1024


class AuditTrailError(OperationError):
    """The audit file cannot be written; the action was not started."""


class AuditTrail:
    def __init__(self, path: Path) -> None:
        self.path = path

    def check(self) -> None:
        """Raise AuditTrailError unless a line can be appended now."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            raise AuditTrailError(
                f"cannot write the audit trail {self.path} ({error.strerror}); nothing was "
                "done: fix the file or set QIKFLOW_CONSOLE_AUDIT_FILE") from error
        os.close(fd)

    def record(self, who: str, action: str, **details: Any) -> dict[str, Any]:
        """Append one entry; return it."""
        entry = {"at": datetime.now(UTC).isoformat(timespec="milliseconds"), "who": who,
                 "action": action, **details}
        line = orjson.dumps(entry, option=orjson.OPT_NON_STR_KEYS) + b"\n"
        self.check()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The last `limit` entries, newest first (read from the file's last megabyte)."""
        try:
            with open(self.path, "rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(0, size - TAIL_BYTES))
                lines = file.read().splitlines()[1 if size > TAIL_BYTES else 0:]
        except FileNotFoundError:
            return []
        entries: deque[dict[str, Any]] = deque(maxlen=limit)
        for line in lines:
            try:
                entries.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        return list(reversed(entries))
