"""The ingest's JSON answers, including Starlette's own 404, 405 and 500.

Every answer of the ingest is JSON (docs/ingest.md). Starlette answers unknown paths and
methods in plain text unless an exception handler says otherwise; these handlers do.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ExceptionHandler


def json_response(status: int, content: dict[str, Any],
                  headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status, headers, media_type="application/json")


def error_name(status: int) -> str:
    """`not_found` for 404: the status phrase in snake case."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "error"
    return phrase.lower().replace(" ", "_").replace("-", "_")


async def http_error(request: Request, error: Exception) -> Response:
    """Starlette's HTTPException (404 unknown path, 405 wrong method) as JSON."""
    if not isinstance(error, HTTPException):  # registered for HTTPException only
        raise error
    return json_response(error.status_code, {"error": error_name(error.status_code)},
                         error.headers)


async def server_error(request: Request, error: Exception) -> Response:
    """A bug: a JSON 500 (Starlette then re-raises, and uvicorn logs the traceback)."""
    return json_response(500, {"error": "internal_error",
                               "detail": "the ingest failed; nothing was kept, please retry"})


EXCEPTION_HANDLERS: dict[Any, ExceptionHandler] = {
    HTTPException: http_error,
    Exception: server_error,
}
