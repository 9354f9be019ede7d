"""Dead letters: list and filter a source a page at a time, show one, re-drive some or all.

A re-drive is two POSTs: the first (a dry run) shows how many letters will move and where,
the second (`confirm`) moves them and writes the audit trail. Both need the CSRF token.
"""

from __future__ import annotations

import logging

from starlette.datastructures import FormData, ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response

from qikflow.console.app import Console, console_of
from qikflow.operations import SOURCES
from qikflow.operations.dead_letters import (
    QUARANTINE,
    DeadLetterFilter,
    decode_cursor,
    encode_cursor,
    picked,
    read_page,
    source_topic,
)
from qikflow.operations.errors import BadInputError
from qikflow.operations.redrive import redrive as run_redrive
from qikflow.operations.times import TimeRange

logger = logging.getLogger(__name__)

FILTER_FIELDS = ("reason", "type", "account", "since", "until")


def _source(value: str | None) -> str:
    source = value or "dlq"
    if source not in SOURCES:
        raise BadInputError(f"unknown dead-letter source {source!r}: choose one of "
                            f"{', '.join(SOURCES)}")
    return source


def _filter(fields: ImmutableMultiDict[str, str] | FormData) -> tuple[dict[str, str],
                                                                       DeadLetterFilter]:
    form = {name: str(fields.get(name) or "").strip() for name in FILTER_FIELDS}
    selection = DeadLetterFilter(form["reason"], form["type"], form["account"],
                                 TimeRange.parse(form["since"], form["until"]))
    return form, selection


async def listing(request: Request) -> Response:
    console = console_of(request)
    params = request.query_params
    source = _source(params.get("source"))
    form, selection = _filter(params)
    cursor_text = params.get("cursor", "")
    page = await read_page(console.pipeline, source, selection,
                           cursor=decode_cursor(cursor_text) if cursor_text else None,
                           size=console.settings.page_size,
                           scan_limit=console.settings.page_scan_records)
    return console.render(request, "dead_letters.html", {
        "sources": SOURCES, "source": source, "form": form, "page": page,
        "cursor": cursor_text, "next_cursor": encode_cursor(page.cursor) if page.cursor else "",
        "filtered": any(form.values())})


async def letter(request: Request) -> Response:
    console = console_of(request)
    ref = request.query_params.get("ref", "")
    (found,) = await picked(console.pipeline, [ref])
    return console.render(request, "letter.html", {"letter": found})


async def redrive(request: Request) -> Response:
    console = console_of(request)
    fields = await request.form()
    user: str = request.state.user
    if not console.csrf.valid(user, str(fields.get("csrf") or "")):
        console.metrics.csrf_refusals.inc()
        logger.warning("console: re-drive by %s refused: missing or wrong CSRF token", user)
        return console.render(request, "error.html", {
            "status": 403, "error": "This re-drive was refused: the form's CSRF token is "
            "missing or wrong (a form from another page or an older console). Nothing was "
            "re-driven. Open the dead letters page again and start over."}, status_code=403)
    source = _source(str(fields.get("source") or ""))
    form, selection = _filter(fields)
    refs = [str(ref) for ref in fields.getlist("refs")] if fields.get("mode") == "selected" \
        else None
    if refs is not None and not refs:
        raise BadInputError("no dead letter is selected: tick at least one, or re-drive all "
                            "that match the filter")
    confirmed = fields.get("confirm") == "yes"
    return await _run(console, request, user, source, form, selection, refs, confirmed)


async def _run(console: Console, request: Request, user: str, source: str,
               form: dict[str, str], selection: DeadLetterFilter, refs: list[str] | None,
               confirmed: bool) -> Response:
    if confirmed:
        console.audit.check()
    summary = await run_redrive(console.pipeline, source, selection, refs=refs,
                                dry_run=not confirmed, window_s=console.settings.search_window_s)
    outcome = "dry-run" if not confirmed else "done" if summary.complete else "stopped"
    console.metrics.actions.labels(source, outcome).inc()
    if confirmed:
        console.metrics.redriven.labels(source).inc(summary.sent)
        console.audit.record(user, "redrive", via="console", source=source,
                             filter=selection.as_dict() if refs is None else None,
                             refs=refs, matched=summary.matched, sent=summary.sent,
                             skipped=sum(summary.skipped.values()), error=summary.error)
    topic = "the quarantine" if source == QUARANTINE else source_topic(console.pipeline, source)
    return console.render(request, "redrive.html", {
        "summary": summary, "source": source, "topic": topic, "form": form, "refs": refs or [],
        "mode": "selected" if refs is not None else "all", "confirmed": confirmed},
        status_code=200 if summary.complete or not confirmed else 503)
