"""Subcommands of the simulate package (filled in by its issue)."""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Register this package's subcommands."""
