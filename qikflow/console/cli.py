"""`qikflow console`: the operator console, a web app in its own process."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

DEFAULT_PORT = 8090


def register(subparsers: Any) -> None:
    console = subparsers.add_parser(
        "console",
        help="the operator console: live overview, messages, trace, dead-letter re-drive",
        description=(
            "Serve the operator console. Log-in credentials come from QIKFLOW_CONSOLE_USERS "
            "(or _FILE); without them it serves only a loopback address, with "
            "QIKFLOW_CONSOLE_ALLOW_ANONYMOUS=true. See docs/console.md."
        ),
    )
    console.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    console.add_argument("--port", type=int, default=DEFAULT_PORT,
                         help=f"port (default {DEFAULT_PORT})")
    console.set_defaults(handler=_console)


def _console(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from qikflow.console.app import HOST_ENV
    from qikflow.console.auth import ConsoleConfigError, ConsoleUsers
    from qikflow.console.server import serve
    from qikflow.console.settings import ConsoleSettings
    from qikflow.operations.audit import AuditTrail
    from qikflow.operations.errors import OperationError

    try:
        settings = ConsoleSettings()
        # Fail here, with one clear line, before uvicorn starts.
        ConsoleUsers.from_settings(settings, args.host)
        AuditTrail(settings.audit_file).check()
    except ValidationError as error:
        problems = "; ".join(
            f"QIKFLOW_CONSOLE_{'_'.join(map(str, p['loc'])).upper()}: "
            f"{str(p['msg']).removeprefix('Value error, ')}" for p in error.errors())
        print(f"qikflow console: invalid settings: {problems}", file=sys.stderr)
        return 2
    except (ConsoleConfigError, OperationError) as error:
        print(f"qikflow console: {error}", file=sys.stderr)
        return 2
    os.environ[HOST_ENV] = args.host
    return serve(args.host, args.port, log_level=args.log_level)
