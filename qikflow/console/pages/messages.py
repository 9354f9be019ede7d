"""Messages: search PostgreSQL, and one message with its status history."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from qikflow.console.app import console_of
from qikflow.operations import messages as stored
from qikflow.operations.times import TimeRange
from qikflow.operations.trace import message_ids

FIELDS = ("message_id", "number", "receipt_id", "account", "since", "until")


async def search(request: Request) -> Response:
    console = console_of(request)
    form = {name: request.query_params.get(name, "").strip() for name in FIELDS}
    ids: tuple[str, ...] = (form["message_id"],) if form["message_id"] else ()
    if form["receipt_id"]:
        ids += tuple(await message_ids(console.pipeline, form["receipt_id"],
                                       window_s=console.settings.search_window_s,
                                       scan_limit=console.settings.page_scan_records))
    query = stored.MessageQuery(
        message_ids=ids,
        number=stored.normalise_number(form["number"]) if form["number"] else "",
        account=form["account"],
        times=TimeRange.parse(form["since"], form["until"]),
        limit=console.settings.page_size,
    )
    found = [] if form["receipt_id"] and not ids else await stored.search(console.db, query)
    return console.render(request, "messages.html", {
        "form": form, "found": found, "searched": any(form.values()),
        "limit": console.settings.page_size})


async def detail(request: Request) -> Response:
    console = console_of(request)
    shown = await stored.message(console.db, request.path_params["message_id"])
    return console.render(request, "message.html", {"message": shown})
