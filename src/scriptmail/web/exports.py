"""The customer area's exports: the message log, the bounces and the suppressed addresses of one
hosting, as CSV or JSON, of what the page's filters select (the same form, the same checks, the
same 404 for a hosting the user may not see), within a time window (exports/window.py). Streamed: rows are read a page at a time while the
file goes out, so a million-row log costs the memory of one page."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from starlette.datastructures import QueryParams

from scriptmail.catalogues import N_
from scriptmail.exports import columns, formats, window
from scriptmail.store import export_rows
from scriptmail.store import log as store_log
from scriptmail.web.area_log import TEXT_FILTERS, read_log_form
from scriptmail.web.pages import Page, logged_in

router = APIRouter(include_in_schema=False)

BAD_FORMAT = "Unknown format: choose CSV or JSON."
WINDOW_FIELDS = {"since": N_("From date"), "until": N_("Until")}
BAD_FILTERS = "Some filters are not valid:"
NO_EXPORT = N_("There is no such download.")


def streamed(hosting: str, kind: columns.Kind, format: str, rows: Iterator[dict], at: float) -> StreamingResponse:
    """The download: chunks as they are made, a file name the browser saves it under."""
    body = formats.chunks(format, kind.columns, kind.rows(rows))
    disposition = f'attachment; filename="{columns.file_name(hosting, kind, format, at)}"'
    return StreamingResponse(body, media_type=formats.MEDIA_TYPES[format], headers={"Content-Disposition": disposition})


def _format(page: Page, request: Request) -> str:
    chosen = request.query_params.get("format", "csv")
    if chosen not in formats.FORMATS:
        raise HTTPException(400, page._(BAD_FORMAT))
    return chosen


def _log_filters(page: Page, request: Request, hosting_id: int) -> store_log.Filters:
    """The log page's filters, and the time window (since/until: days or times, the last 31 days
    when neither is given, at most 366 days) instead of its whole days."""
    params = request.query_params
    if any(ord(ch) < 32 or ord(ch) == 127 for name in TEXT_FILTERS for ch in params.get(name, "")):
        raise HTTPException(400, page._("A filter holds a control character: remove it."))
    form = read_log_form(page, QueryParams({k: v for k, v in params.multi_items() if k not in ("since", "until")}), hosting_id)
    if form.filters is None:
        raise HTTPException(400, " ".join((page._(BAD_FILTERS), *form.errors.values())))
    found = export_window(page, params.get("since"), params.get("until"))
    return dataclasses.replace(form.filters, since=found.since, until=found.until)


def export_window(page: Page, since: str | None, until: str | None) -> window.Window:
    """The window typed, or 400 saying what is wrong with which end of it."""
    try:
        return window.read(since, until, page.context.clock(), page.zone)
    except window.BadWindow as bad:
        field = page._(WINDOW_FIELDS[bad.field])
        text = page._(bad.message, count=bad.count) if bad.count is not None else page._(bad.message)
        raise HTTPException(400, f"{field}: {text}") from None


def export(page: Page, request: Request, name: str, hosting_id: int, kind: str) -> Response:
    """One hosting's export of `kind` (log, bounces, suppressions), once the caller has checked
    that the user may see the hosting: the customer area's routes and the operator area's."""
    format = _format(page, request)
    now = page.context.clock()
    if kind == "suppressions":
        search = request.query_params.get("search", "").strip()
        if len(search) > 320:
            raise HTTPException(400, page._("This search is too long."))
        return streamed(name, columns.SUPPRESSIONS, format, export_rows.suppression_rows(page.context.engine, hosting_id, now, search=search), now)
    if kind not in ("log", "bounces"):
        raise HTTPException(404, page._(NO_EXPORT))
    filters = _log_filters(page, request, hosting_id)
    if kind == "bounces":
        return streamed(name, columns.BOUNCES, format, export_rows.log_rows(page.context.engine, filters, export_rows.BOUNCE_STATUSES), now)
    return streamed(name, columns.MESSAGES, format, export_rows.log_rows(page.context.engine, filters), now)


@router.get("/hostings/{name}/export/log")
async def export_log(request: Request, name: str) -> Response:
    page = await logged_in(request)
    return export(page, request, name, await page.owned(name), "log")


@router.get("/hostings/{name}/export/bounces")
async def export_bounces(request: Request, name: str) -> Response:
    page = await logged_in(request)
    return export(page, request, name, await page.owned(name), "bounces")


@router.get("/hostings/{name}/export/suppressions")
async def export_suppressions(request: Request, name: str) -> Response:
    page = await logged_in(request)
    return export(page, request, name, await page.owned(name), "suppressions")
