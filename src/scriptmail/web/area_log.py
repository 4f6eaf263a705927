"""The customer area's tracking pages of one hosting (issue 5): the message log and the detail of
one recipient, the held mail before a purge, and which scripts send.

Read-only pages. Every list is read a page at a time along an index (keyset pagination on ids,
never OFFSET), so a hosting with a million logged recipients answers as fast as a new one. Bad
filter input answers 400 with the form and what is wrong, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from scriptmail.model import RecipientStatus
from scriptmail.store import held as held_store
from scriptmail.store import log as store_log
from scriptmail.store import stats
from scriptmail.web.pages import Page, logged_in

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
SCRIPTS_SHOWN = 100
TEXT_FILTERS = {"recipient": 320, "subject": 200, "script": 200}  # name: longest value accepted

STATUS_LABELS = {
    RecipientStatus.QUEUED: "In the queue",
    RecipientStatus.DEFERRED: "Deferred",
    RecipientStatus.SENDING: "Being sent",
    RecipientStatus.SENT: "Sent",
    RecipientStatus.BOUNCED: "Bounced",
    RecipientStatus.EXPIRED: "Expired",
    RecipientStatus.HELD: "On hold",
    RecipientStatus.PURGED: "Purged",
    RecipientStatus.SUPPRESSED: "Suppressed",
}
BAD_LINK = "This link is not valid: go back to the first page."


@dataclass
class LogForm:
    """The log's filter form as typed, what it means for the store, and what is wrong with it."""

    values: dict[str, str]
    filters: store_log.Filters | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, **extra: int) -> str:
        """The form's filters (those set) and a page position, as a query string."""
        kept = {name: value for name, value in self.values.items() if value}
        return str(QueryParams({**kept, **{name: str(value) for name, value in extra.items()}}))


def _status_label(page: Page, status: str) -> str:
    try:
        return page._(STATUS_LABELS[RecipientStatus(status)])
    except ValueError:
        return status


def _position(page: Page, params: QueryParams, name: str) -> int | None:
    """A keyset position (`before`, `after`): a positive id, else the link was tampered with (400)."""
    value = params.get(name, "")
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise HTTPException(400, page._(BAD_LINK))
    return int(value)


def read_log_form(page: Page, params: QueryParams, hosting_id: int) -> LogForm:
    """Check the filters of the log page; each problem is named against its field."""
    names = ("status", *TEXT_FILTERS, "since", "until")
    form = LogForm({name: params.get(name, "").strip() for name in names})
    values, errors = form.values, form.errors
    status = None
    if values["status"]:
        try:
            status = RecipientStatus(values["status"])
        except ValueError:
            errors["status"] = page._("Unknown status: choose one from the list.")
    for name, longest in TEXT_FILTERS.items():
        if len(values[name]) > longest:
            errors[name] = page._("Too long: at most %(count)s characters.", count=longest)
    days: dict[str, date | None] = {"since": None, "until": None}
    for name in days:
        if values[name]:
            try:
                days[name] = date.fromisoformat(values[name])
            except ValueError:
                errors[name] = page._("Not a date: use the form YYYY-MM-DD.")
    if days["since"] and days["until"] and days["since"] > days["until"]:
        errors["until"] = page._("The end date is before the start date.")
    if errors:
        return form
    zone = page.zone
    form.filters = store_log.Filters(
        hosting_id=hosting_id,
        status=status,
        recipient=values["recipient"] or None,
        subject=values["subject"] or None,
        script=values["script"] or None,
        since=stats.day_bounds(days["since"], zone)[0] if days["since"] else None,
        until=stats.day_bounds(days["until"], zone)[1] if days["until"] else None,  # the end day is included
    )
    return form


# --- the message log --------------------------------------------------------------------------


@router.get("/hostings/{name}/log")
async def log_page(request: Request, name: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    params = request.query_params
    before, after = _position(page, params, "before"), _position(page, params, "after")
    if before is not None and after is not None:
        raise HTTPException(400, page._(BAD_LINK))
    form = read_log_form(page, params, hosting_id)
    rows: list[dict[str, Any]] = []
    older = newer = searched = None
    if form.filters is not None:
        filters = form.filters
        if after is not None:
            found = await page.context.read(lambda c: store_log.recent(c, filters, limit=PAGE_SIZE + 1, after_id=after))
        else:
            found, resume = await page.context.read(lambda c: store_log.search(c, filters, limit=PAGE_SIZE + 1, before_id=before))
        if after is not None:
            more_newer = len(found) > PAGE_SIZE
            rows = found[1:] if more_newer else found  # newest first: the extra row is the newest
            newer = form.query(after=rows[0]["id"]) if more_newer and rows else None
            older = form.query(before=rows[-1]["id"]) if rows else form.query(before=after + 1)
        else:
            rows = found[:PAGE_SIZE]
            older = form.query(before=rows[-1]["id"]) if len(found) > PAGE_SIZE else None
            if resume is not None:  # the search window ended before the log: older mail is still to search
                older, searched = form.query(before=resume), store_log.SEARCH_WINDOW
            if before is not None:
                newer = form.query(after=rows[0]["id"]) if rows else form.query(after=before - 1)
    zone = page.zone
    return page.render(
        "log.html",
        status=400 if form.errors else 200,
        hosting_name=name,
        form=form.values,
        errors=form.errors,
        statuses=[(status.value, page._(label)) for status, label in STATUS_LABELS.items()],
        rows=[
            {
                "id": row["id"],
                "date": page.when(row["received_at"]),
                "recipient": row["recipient"],
                "subject": row["subject"],
                "script": row["script"],
                "status": row["status"],
                "status_label": _status_label(page, row["status"]),
                "reply": f"{row['last_code'] or ''} {row['last_text']}".strip(),
            }
            for row in rows
        ],
        filtered=any(form.values.values()),
        paged=before is not None or after is not None,
        first=form.query(),
        older=older,
        newer=newer,
        searched=format_decimal(searched, locale=page.locale) if searched else None,
        zone=zone.key,
    )


@router.get("/hostings/{name}/log/{recipient_id}")
async def message_page(request: Request, name: str, recipient_id: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    if not recipient_id.isascii() or not recipient_id.isdigit() or len(recipient_id) > 18:
        raise HTTPException(404, page._("There is no such email in the log of this hosting."))
    found = await page.context.read(lambda c: store_log.detail(c, int(recipient_id), hosting_id=hosting_id))
    if found is None:
        raise HTTPException(404, page._("There is no such email in the log of this hosting."))
    return page.render(
        "message.html",
        hosting_name=name,
        message={
            "id": found["id"],
            "queue_id": found["queue_id"],
            "received": page.when(found["received_at"], seconds=True),
            "updated": page.when(found["updated_at"], seconds=True),
            "sender": found["sender"],
            "recipient": found["recipient"],
            "subject": found["subject"],
            "message_id": found["message_id_header"],
            "size": format_decimal(found["size"], locale=page.locale),
            "origin": found["origin"],
            "client": found["client"],
            "script": found["script"],
            "cwd": found["cwd"],
            "command": found["command"],
            "score": format_decimal(round(found["score"], 2), locale=page.locale),
            "score_reasons": found["score_reasons"],
            "status": found["status"],
            "status_label": _status_label(page, found["status"]),
            "reply": f"{found['last_code'] or ''} {found['last_text']}".strip(),
            "next_attempt": page.when(found["next_attempt_at"])
            if found["status"] in (RecipientStatus.QUEUED.value, RecipientStatus.DEFERRED.value)
            else "",
        },
        attempts=[
            {
                "at": page.when(attempt["at"], seconds=True),
                "node": attempt["node"],
                "mx_host": attempt["mx_host"],
                "code": attempt["code"] if attempt["code"] is not None else "",
                "text": attempt["text"],
                "duration": format_decimal(round(attempt["duration"], 2), locale=page.locale),
            }
            for attempt in found["attempts"]
        ],
        reports=[
            {
                "at": page.when(report["received_at"], seconds=True),
                "kind": report["kind"],
                "client": report["client"],
                "summary": report["summary"],
            }
            for report in found["reports"]
        ],
    )


# --- held mail --------------------------------------------------------------------------------


@router.get("/hostings/{name}/held")
async def held_page(request: Request, name: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    before = _position(page, request.query_params, "before")
    with_text = page.context.settings.web.show_held_body

    def read(connection) -> tuple[tuple[int, int], list[held_store.HeldMessage]]:
        found = held_store.held_messages(connection, hosting_id, before=before, limit=held_store.PAGE + 1, with_text=with_text)
        return held_store.totals(connection, hosting_id), found

    (recipients, messages), found = await page.context.read(read)
    shown = found[: held_store.PAGE]
    return page.render(
        "held.html",
        hosting_name=name,
        held_recipients=recipients,
        held_messages=messages,
        show_text=with_text,
        messages=[
            {
                "queue_id": message.queue_id,
                "received": page.when(message.received_at),
                "sender": message.sender,
                "size": format_decimal(message.size, locale=page.locale),
                "held": message.held,
                "stored": message.stored,
                "subject": next((value for header, value in message.content.headers if header == "Subject"), ""),
                "headers": message.content.headers,
                "text": message.content.text,
                "text_state": message.content.text_state,
                "truncated": message.content.truncated,
            }
            for message in shown
        ],
        older=str(QueryParams({"before": shown[-1].queue_id})) if len(found) > held_store.PAGE else None,
        paged=before is not None,
        text_limit=held_store.TEXT_BYTES // 1024,
    )


# --- which scripts send ------------------------------------------------------------------------


@router.get("/hostings/{name}/scripts")
async def scripts_page(request: Request, name: str) -> Response:
    page = await logged_in(request)
    hosting_id = await page.owned(name)
    found = await page.context.read(lambda c: stats.scripts(c, hosting_id, limit=SCRIPTS_SHOWN))
    rows = []
    for row in found:
        share = row["bounced"] / row["recipients"] if row["recipients"] else None
        rows.append(
            {
                "script": row["script"],
                "messages": format_decimal(row["messages"], locale=page.locale),
                "recipients": format_decimal(row["recipients"], locale=page.locale),
                "bounced": format_decimal(row["bounced"], locale=page.locale),
                "share": format_percent(share, "#,##0.0%", locale=page.locale) if share is not None else "",
                "last": page.when(row["last_at"]),
            }
        )
    return page.render("scripts.html", hosting_name=name, scripts=rows, shown=SCRIPTS_SHOWN)
