"""Reading the queue and the log: one row per recipient, joined with its message and hosting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select

from scriptmail.config import PlanSettings
from scriptmail.control.quota import describe_wait
from scriptmail.model import FINAL_STATUSES, RecipientStatus
from scriptmail.store import activity
from scriptmail.store.schema import hostings, messages, recipients

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
            {"queue_id": row["queue_id"], "size": row["size"], "arrival": row["received_at"], "sender": row["sender"], "recipients": []},
        )
        message["recipients"].append({"address": row["recipient"], "status": row["status"], "reason": row["last_text"]})
    return list(grouped.values())


def recent(
    connection: Connection,
    hosting: str | None = None,
    status: RecipientStatus | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The latest recipients, newest first, whatever their status."""
    query = _base(hosting)
    if status is not None:
        query = query.where(recipients.c.status == status.value)
    query = query.order_by(recipients.c.id.desc()).limit(limit)
    return [dict(row._mapping) for row in connection.execute(query)]


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
    waiting = [row for row in rows if row["status"] == RecipientStatus.QUEUED.value and not row["attempts"] and not row["last_text"]]
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
