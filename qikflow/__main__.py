"""Allows `python -m qikflow`."""

from __future__ import annotations

from qikflow.cli import main

raise SystemExit(main())
