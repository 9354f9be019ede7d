"""Runs the ingest app on uvicorn (uvloop + httptools), one or several worker processes.

The ingest app is served by `ingest.protocol.IngestHttpProtocol`, uvicorn's httptools
protocol with bounded heads, head and body time, and connections (its docstring says why
uvicorn's own settings do not cover them). Any other app (the benchmarks' no-op baseline)
gets uvicorn's plain httptools protocol, since the limits live in the ingest's lifespan.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn

logger = logging.getLogger(__name__)

APP_FACTORY = "ingest.app:create_app"
INGEST_PROTOCOL = "ingest.protocol:IngestHttpProtocol"
GRACEFUL_SHUTDOWN_S = 20
# An idle connection (between requests, or new and silent) is closed after this long.
KEEP_ALIVE_S = 5


def serve(host: str, port: int, workers: int, *, app: str = APP_FACTORY,
          forwarded_allow_ips: str = "127.0.0.1", log_level: str = "info") -> None:
    """Serve until SIGTERM/SIGINT: stop accepting, finish in-flight requests, run shutdown."""
    metrics_dir: Path | None = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker keeps its own counters; this directory lets /metrics sum them all.
        metrics_dir = Path(tempfile.mkdtemp(prefix=f"qikflow-metrics-{port}-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        uvicorn.run(
            app,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http=INGEST_PROTOCOL if app == APP_FACTORY else "httptools",
            lifespan="on",
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            timeout_keep_alive=KEEP_ALIVE_S,
            log_level=log_level.lower(),
            access_log=False,
            server_header=False,
            date_header=False,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
