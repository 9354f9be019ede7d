"""qikflow: durable Qikchat WhatsApp webhook pipeline (ingest, streams, sinks)."""

from __future__ import annotations

__version__ = "0.1.0"
