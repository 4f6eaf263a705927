"""Reading the queue and the log: one row per recipient, joined with its message and hosting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, or_, select

from scriptmail.config import PlanSettings
from scriptmail.control.quota import describe_wait
from scriptmail.international.addresses import search_forms
from scriptmail.model import FINAL_STATUSES, RecipientStatus
from scriptmail.store import activity
from scriptmail.store.schema import attempts, hostings, inbound_reports, messages, recipients

_FINAL = [status.value for status in FINAL_STATUSES]

_COLUMNS = (
    recipients.c.id,
    recipients.c.message_id.label("queue_id"),
    hostings.c.name.label("hosting"),
    messages.c.received_at,
    messages.c.envelope_from.label("sender"),
    recipients.c.address.label("recipient"),
    messages.c.subject,
    messages.c.size,
    messages.c.origin,
    messages.c.script,
    recipients.c.status,
    recipients.c.attempts,
    recipients.c.next_attempt_at,
    recipients.c.last_code,
    recipients.c.last_text,
    recipients.c.updated_at,
)


def _base(hosting: str | None = None, hosting_id: int | None = None) -> Any:
    query = select(*_COLUMNS).select_from(
        recipients.join(messages, messages.c.id == recipients.c.message_id).join(
            hostings, hostings.c.id == recipients.c.hosting_id
        )
    )
    if hosting is not None:
        query = query.where(hostings.c.name == hosting)
    if hosting_id is not None:
        query = query.where(recipients.c.hosting_id == hosting_id)
    return query


def queued(
    connection: Connection,
    hosting: str | None = None,
    hosting_id: int | None = None,
    limit: int = 1000,
    held_only: bool = False,
) -> list[dict[str, Any]]:
    """Recipients not yet final, oldest first (what `mailq` shows); or only the held ones."""
    wanted = recipients.c.status == RecipientStatus.HELD.value if held_only else recipients.c.status.not_in(_FINAL)
    query = _base(hosting, hosting_id).where(wanted).order_by(recipients.c.id).limit(limit)
    return [dict(row._mapping) for row in connection.execute(query)]


def queued_messages(connection: Connection, hosting_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    """The queue of one hosting grouped by message, for `sendmail -bp`."""
    grouped: dict[int, dict[str, Any]] = {}
    for row in queued(connection, hosting_id=hosting_id, limit=limit):
        message = grouped.setdefault(
            row["queue_id"],
            {
                "queue_id": row["queue_id"],
                "size": row["size"],
                "arrival": row["received_at"],
                "sender": row["sender"],
                "recipients": [],
            },
        )
        message["recipients"].append({"address": row["recipient"], "status": row["status"], "reason": row["last_text"]})
    return list(grouped.values())


@dataclass(frozen=True, slots=True)
class Filters:
    """What `log` narrows the log to; text filters match anywhere, case-insensitively."""

    hosting: str | None = None
    status: RecipientStatus | None = None
    recipient: str | None = None
    sender: str | None = None
    subject: str | None = None
    script: str | None = None
    since: float | None = None
    until: float | None = None
    hosting_id: int | None = None  # faster than `hosting`: read along the (hosting_id, id) index


def _contains(column: Any, text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def recent(
    connection: Connection,
    filters: Filters | None = None,
    limit: int = 50,
    before_id: int | None = None,
    after_id: int | None = None,
) -> list[dict[str, Any]]:
    """The latest recipients matching the filters, newest first, whatever their status.

    A page at a time without OFFSET: `before_id` gives the page older than a row (the next
    page), `after_id` the page just newer than one (the previous page), both still newest first.
    """
    rows = connection.execute(recent_query(filters, limit, before_id, after_id)).all()
    if after_id is not None:
        rows.reverse()
    return [dict(row._mapping) for row in rows]


SEARCH_WINDOW = 100_000  # recipients one filtered page of a hosting's log reads at the most
FIRST_WINDOW = 10_000  # tried first: a filter matching 1 row in 200 fills its page within it


def narrows(filters: Filters) -> bool:
    """Whether the filters go beyond the hosting: then a page may have to read far to fill up."""
    return any((filters.status, filters.recipient, filters.sender, filters.subject, filters.script, filters.since, filters.until))


def search(
    connection: Connection, filters: Filters, limit: int = 50, before_id: int | None = None, window: int | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Like `recent` (newest first, older than `before_id`), but a filtered search of one hosting
    reads at most its `window` next recipients, so a filter that matches little or nothing costs
    the same as one that matches at once. Returns the rows and, when the window ended the search
    before the log did, the id the next search continues below.

    Finding where the window ends costs a walk of its length along the index, so a first, short
    window is tried: a filter that matches often fills its page there and never pays for the long one.
    """
    window = window or SEARCH_WINDOW
    if filters.hosting_id is None or not narrows(filters):
        return [dict(row._mapping) for row in connection.execute(recent_query(filters, limit, before_id))], None
    for size in sorted({min(FIRST_WINDOW, window), window}):
        edge = _window_edge(connection, filters.hosting_id, before_id, size)
        statement = recent_query(filters, limit, before_id)
        if edge is not None:
            statement = statement.where(recipients.c.id > edge)
        rows = [dict(row._mapping) for row in connection.execute(statement)]
        if edge is None or len(rows) >= limit:
            return rows, None  # the log ended inside the window, or the page is full
    return rows, edge + 1


def _window_edge(connection: Connection, hosting_id: int, before_id: int | None, size: int) -> int | None:
    """The id `size` recipients of the hosting below `before_id` (None: the log ends sooner)."""
    query = select(recipients.c.id).where(recipients.c.hosting_id == hosting_id)
    if before_id is not None:
        query = query.where(recipients.c.id < before_id)
    return connection.execute(query.order_by(recipients.c.id.desc()).offset(size).limit(1)).scalar()


def recent_query(
    filters: Filters | None = None, limit: int = 50, before_id: int | None = None, after_id: int | None = None
) -> Any:
    """The statement `recent` runs (ascending from `after_id`, else descending): one hosting's
    log, unfiltered, walks the (hosting_id, id) index and stops after `limit` rows."""
    filters = filters or Filters()
    query = _base(filters.hosting, filters.hosting_id)
    if before_id is not None:
        query = query.where(recipients.c.id < before_id)
    if after_id is not None:
        query = query.where(recipients.c.id > after_id)
    if filters.status is not None:
        query = query.where(recipients.c.status == filters.status.value)
    if filters.recipient:
        # An IDN domain is stored as an A-label; a customer types it in Unicode.
        query = query.where(or_(*(_contains(recipients.c.address, form) for form in search_forms(filters.recipient))))
    if filters.sender:
        query = query.where(_contains(messages.c.envelope_from, filters.sender))
    if filters.subject:
        query = query.where(_contains(messages.c.subject, filters.subject))
    if filters.script:
        query = query.where(
            or_(_contains(messages.c.script, filters.script), _contains(messages.c.cwd, filters.script),
                _contains(messages.c.command, filters.script))
        )  # fmt: skip
    if filters.since is not None:
        query = query.where(messages.c.received_at >= filters.since)
    if filters.until is not None:
        query = query.where(messages.c.received_at < filters.until)
    order = recipients.c.id if after_id is not None else recipients.c.id.desc()
    return query.order_by(order).limit(limit)


def detail(connection: Connection, recipient_id: int, hosting_id: int | None = None) -> dict[str, Any] | None:
    """One recipient with its message's provenance, every attempt, and the reports that came back;
    None when there is no such recipient (or, given a hosting, when it belongs to another one)."""
    columns = (*_COLUMNS, messages.c.message_id.label("message_id_header"), messages.c.client, messages.c.cwd,
               messages.c.command, messages.c.score, messages.c.score_reasons, recipients.c.queued_at)  # fmt: skip
    query = _base(hosting_id=hosting_id).with_only_columns(*columns).where(recipients.c.id == recipient_id)
    row = connection.execute(query).first()
    if row is None:
        return None
    found = dict(row._mapping)
    found["attempts"] = [
        dict(attempt._mapping)
        for attempt in connection.execute(
            select(attempts.c.at, attempts.c.node, attempts.c.mx_host, attempts.c.code, attempts.c.text, attempts.c.duration)
            .where(attempts.c.recipient_id == recipient_id)
            .order_by(attempts.c.id)
        )
    ]
    found["reports"] = [
        dict(report._mapping)
        for report in connection.execute(
            select(inbound_reports.c.received_at, inbound_reports.c.kind, inbound_reports.c.client, inbound_reports.c.summary)
            .where(inbound_reports.c.recipient_id == recipient_id)
            .order_by(inbound_reports.c.id)
        )
    ]
    return found


def status_counts(connection: Connection, hosting_id: int | None = None) -> dict[str, int]:
    """How many recipients are in each status (all hostings, or one)."""
    query = select(recipients.c.status, func.count()).group_by(recipients.c.status)
    if hosting_id is not None:
        query = query.where(recipients.c.hosting_id == hosting_id)
    return {status: count for status, count in connection.execute(query)}


def explain_waits(
    connection: Connection, rows: list[dict[str, Any]], plan_of: Callable[[str], PlanSettings], now: float, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Say why queued mail that was never tried waits, when its hosting has used up its quota."""
    waiting = [
        row for row in rows if row["status"] == RecipientStatus.QUEUED.value and not row["attempts"] and not row["last_text"]
    ]
    names = {row["hosting"] for row in waiting}
    if not names:
        return rows
    found = connection.execute(select(hostings.c.id, hostings.c.name, hostings.c.plan).where(hostings.c.name.in_(names))).all()
    reasons = {}
    for hosting_id, name, plan in found:
        room = activity.quota_room(connection, hosting_id, plan_of(plan), now, zone)
        if room.count == 0 and room.until is not None:
            reasons[name] = describe_wait(room.reason, room.until)
    for row in waiting:
        if row["hosting"] in reasons:
            row["last_text"] = reasons[row["hosting"]]
    return rows
