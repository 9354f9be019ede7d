"""Runs the console app on uvicorn: one process, no access log (pages can name bodies)."""

from __future__ import annotations

import uvicorn

APP_FACTORY = "qikflow.console.app:create_app"
GRACEFUL_SHUTDOWN_S = 10


def serve(host: str, port: int, *, log_level: str = "info") -> int:
    """Serve until SIGTERM/SIGINT; 1 when the port could not be bound."""
    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, lifespan="on",
                            log_level=log_level.lower(), access_log=False, server_header=False,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
