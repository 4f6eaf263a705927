"""The API's exports: `/1.0/hosting/web/{serviceName}/email/export/{messages,bounces,suppressions}`,
CSV or JSON (`format=`), with the filters of the listing they export, within a time window
(`since`, `until`: exports/window.py). Streamed like the area's
(web/exports.py); a foreign hosting answers 404 exactly like an unknown one, before anything is read."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse

from scriptmail.exports import columns, window
from scriptmail.model import RecipientStatus
from scriptmail.store import export_rows
from scriptmail.store import log as store_log
from scriptmail.web.api import NOT_FOUND, Context, User
from scriptmail.web.exports import streamed
from scriptmail.web.fields import TEXT_PATTERN
from scriptmail.web.problems import responses

router = APIRouter(prefix="/1.0/hosting/web/{serviceName}/email/export", tags=["exports"])

Format = Annotated[Literal["csv", "json"], Query(description="`csv` (UTF-8, a header row) or `json` (one array).")]
_DOCUMENTED = responses(401, 404, 422, 429)


def _file(kind: columns.Kind) -> dict[int | str, dict[str, Any]]:
    """The 200 answer in both media types, and the errors."""
    row = {"type": "object", "properties": {name: {} for name in kind.columns}}
    return {
        200: {
            "description": "The export, streamed (`Content-Disposition: attachment`).",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": row}},
            },
        },
        **_DOCUMENTED,
    }


async def _hosting(serviceName: Annotated[str, Path(max_length=253)], user: User, context: Context) -> int:
    found = await context.visible_hosting(user, serviceName)
    if found is None:
        raise HTTPException(404, NOT_FOUND)
    return found


Hosting = Annotated[int, Depends(_hosting)]
Text = Annotated[str | None, Query(max_length=320, pattern=TEXT_PATTERN)]
# The form the window reads; the calendar (a month 13), the order and the length are checked after it (422).
MOMENT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
Since = Annotated[str | None, Query(max_length=40, pattern=MOMENT, description=(
    "Start of the time window (included): YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][±HH:MM], UTC unless an offset is given. "
    f"Default: {window.DEFAULT_DAYS} days before `until`."))]  # fmt: skip
Until = Annotated[str | None, Query(max_length=40, pattern=MOMENT, description=(
    "End of the time window: a day is included whole; a time is excluded. Default: now. "
    f"The window is at most {window.MAX_DAYS} days long."))]  # fmt: skip
_UTC = ZoneInfo("UTC")


def _filters(context, hosting_id: int, status, recipient, subject, script, since, until) -> store_log.Filters:
    try:
        found = window.read(since, until, context.clock(), _UTC)
    except window.BadWindow as bad:
        raise HTTPException(422, f"invalid request: query.{bad.field}: {bad}") from None
    return store_log.Filters(
        hosting_id=hosting_id, status=status, recipient=recipient, subject=subject, script=script,
        since=found.since, until=found.until,
    )  # fmt: skip


@router.get("/messages", response_class=StreamingResponse, responses=_file(columns.MESSAGES),
            summary="The message log as CSV or JSON, with the filters of /messages")  # fmt: skip
async def export_messages(
    serviceName: Annotated[str, Path(max_length=253)], hosting_id: Hosting, context: Context, format: Format = "csv",
    status: RecipientStatus | None = None, recipient: Text = None, subject: Text = None, script: Text = None,
    since: Since = None, until: Until = None,
) -> StreamingResponse:  # fmt: skip
    filters = _filters(context, hosting_id, status, recipient, subject, script, since, until)
    rows = export_rows.log_rows(context.engine, filters)
    return streamed(serviceName, columns.MESSAGES, format, rows, context.clock())


@router.get("/bounces", response_class=StreamingResponse, responses=_file(columns.BOUNCES),
            summary="Every recipient in error (bounced or expired) as CSV or JSON")  # fmt: skip
async def export_bounces(
    serviceName: Annotated[str, Path(max_length=253)], hosting_id: Hosting, context: Context, format: Format = "csv",
    recipient: Text = None, subject: Text = None, script: Text = None, since: Since = None, until: Until = None,
) -> StreamingResponse:  # fmt: skip
    filters = _filters(context, hosting_id, None, recipient, subject, script, since, until)
    rows = export_rows.log_rows(context.engine, filters, statuses=export_rows.BOUNCE_STATUSES)
    return streamed(serviceName, columns.BOUNCES, format, rows, context.clock())


@router.get("/suppressions", response_class=StreamingResponse, responses=_file(columns.SUPPRESSIONS),
            summary="The hosting's suppressed addresses as CSV or JSON")  # fmt: skip
async def export_suppressions(
    serviceName: Annotated[str, Path(max_length=253)], hosting_id: Hosting, context: Context, format: Format = "csv",
    search: Annotated[str, Query(max_length=320, pattern=TEXT_PATTERN, description="Only entries containing this text.")] = "",
) -> StreamingResponse:  # fmt: skip
    now = context.clock()
    rows = export_rows.suppression_rows(context.engine, hosting_id, now, search=search)
    return streamed(serviceName, columns.SUPPRESSIONS, format, rows, now)
