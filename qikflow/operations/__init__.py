"""Operator actions shared by the `qikflow` command and the console: trace, re-drive, replay.

The console's pages and the commands call the same functions here, so what an operator
sees in the browser is what `qikflow trace`, `qikflow redrive` and `qikflow replay` print.
"""

# Where dead letters are kept: three topics (`<prefix>.<source>`) and the ingest's quarantine.
SOURCES = ("dlq", "unknown", "sink.dlq", "quarantine")
