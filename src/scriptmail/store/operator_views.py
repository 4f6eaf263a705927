"""What the operator area reads: every hosting with today's volume, one hosting's queue, and the
whole platform's queue (issue 5). Pure reads, each a few statements whatever the platform's size.

The hosting list reads today's counts from activity_daily in the same statement as the hostings
(one row per hosting and day, on its primary key), and the last hour and the owners only for the
page shown. The queue overview counts the not-final recipients on the (status, next_attempt_at)
index: its cost grows with the queue, never with the log of finished mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, case, func, select

from scriptmail.model import HostingState, RecipientStatus
from scriptmail.store import activity
from scriptmail.store.hostings import SYSTEM_HOSTING
from scriptmail.store.schema import activity as activity_table
from scriptmail.store.schema import activity_daily, hostings, messages, recipients, user_hostings, users

NOT_FINAL = (RecipientStatus.QUEUED, RecipientStatus.DEFERRED, RecipientStatus.SENDING, RecipientStatus.HELD)
_NOT_FINAL = [status.value for status in NOT_FINAL]

# The domain overview groups at most this many not-final recipients: a platform with a million
# held messages still answers at once, and the page says when the figures are a sample.
DOMAIN_SCAN = 100_000


@dataclass(frozen=True, slots=True)
class HostingFilters:
    """What the hosting list narrows to; None or empty means any."""

    state: HostingState | None = None
    plan: str | None = None
    min_today: int = 0
    name_contains: str = ""


@dataclass(frozen=True, slots=True)
class HostingPage:
    rows: list[dict[str, Any]]
    total: int  # hostings matching the filters, on every page
    offset: int
    limit: int
    counts: dict[str, int] = field(default_factory=dict)  # matching hostings per state


def _contains(column: Any, text: str) -> Any:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def hosting_list(connection: Connection, filters: HostingFilters, now: float, offset: int = 0, limit: int = 100) -> HostingPage:
    """One page of hostings (name order) with state, plan, sent today and in the last hour, owners."""
    today = (
        select(activity_daily.c.hosting_id, func.sum(activity_daily.c.sent).label("sent"))
        .where(activity_daily.c.day == activity.day_of(now))
        .group_by(activity_daily.c.hosting_id)
        .subquery("today")
    )
    sent_today = func.coalesce(today.c.sent, 0)
    source = hostings.outerjoin(today, today.c.hosting_id == hostings.c.id)
    conditions = [hostings.c.name != SYSTEM_HOSTING, hostings.c.deleted_at.is_(None)]
    if filters.state is not None:
        conditions.append(hostings.c.state == filters.state.value)
    if filters.plan:
        conditions.append(hostings.c.plan == filters.plan)
    if filters.min_today > 0:
        conditions.append(sent_today >= filters.min_today)
    if filters.name_contains:
        conditions.append(_contains(hostings.c.name, filters.name_contains.strip().lower()))
    counts = {
        state: int(count)
        for state, count in connection.execute(
            select(hostings.c.state, func.count()).select_from(source).where(*conditions).group_by(hostings.c.state)
        )
    }
    query = (
        select(
            hostings.c.id,
            hostings.c.name,
            hostings.c.state,
            hostings.c.plan,
            hostings.c.owner_email,
            sent_today.label("sent_today"),
        )
        .select_from(source)
        .where(*conditions)
        .order_by(hostings.c.name)
        .offset(offset)
        .limit(limit)
    )
    rows = [dict(row._mapping) for row in connection.execute(query)]
    ids = [row["id"] for row in rows]
    hour = last_hour_sent(connection, ids, now)
    owners = owners_of(connection, ids)
    for row in rows:
        row["sent_today"] = int(row["sent_today"])
        row["state"] = HostingState(row["state"])
        row["last_hour"] = hour.get(row["id"], 0)
        row["owners"] = owners.get(row["id"], [])
    return HostingPage(rows, sum(counts.values()), offset, limit, counts)


def last_hour_sent(connection: Connection, hosting_ids: list[int], now: float) -> dict[int, int]:
    """Recipients sent in the last 60 minutes, per hosting (read on the per-minute counters' key)."""
    if not hosting_ids:
        return {}
    since = activity.minute_of(now) - 59
    rows = connection.execute(
        select(activity_table.c.hosting_id, func.sum(activity_table.c.sent))
        .where(activity_table.c.hosting_id.in_(hosting_ids), activity_table.c.minute >= since)
        .group_by(activity_table.c.hosting_id)
    )
    return {hosting_id: int(sent or 0) for hosting_id, sent in rows}


def owners_of(connection: Connection, hosting_ids: list[int]) -> dict[int, list[str]]:
    """The accounts that own each hosting (e-mail addresses, sorted)."""
    if not hosting_ids:
        return {}
    found: dict[int, list[str]] = {}
    rows = connection.execute(
        select(user_hostings.c.hosting_id, users.c.email)
        .join(users, users.c.id == user_hostings.c.user_id)
        .where(user_hostings.c.hosting_id.in_(hosting_ids))
        .order_by(users.c.email)
    )
    for hosting_id, email in rows:
        found.setdefault(hosting_id, []).append(email)
    return found


def queue_by_status(connection: Connection, hosting_id: int | None = None) -> dict[str, int]:
    """Not-final recipients per status (every status present, zeros included)."""
    query = select(recipients.c.status, func.count()).where(recipients.c.status.in_(_NOT_FINAL)).group_by(recipients.c.status)
    if hosting_id is not None:
        query = query.where(recipients.c.hosting_id == hosting_id)
    counts = dict(connection.execute(query).all())
    return {status: int(counts.get(status, 0)) for status in _NOT_FINAL}


def queue_by_domain(connection: Connection, limit: int = 20, scan: int = DOMAIN_SCAN) -> list[dict[str, Any]]:
    """The destination domains with the most not-final recipients: waiting (queued, deferred,
    sending) and held. Groups the stored `domain` column (the lower-cased part after the @, set
    at intake), so both stores run the same plain GROUP BY; at most `scan` recipients are read."""
    sample = select(recipients.c.domain, recipients.c.status).where(recipients.c.status.in_(_NOT_FINAL)).limit(scan).subquery()
    held = func.sum(case((sample.c.status == RecipientStatus.HELD.value, 1), else_=0))
    total = func.count()
    query = (
        select(sample.c.domain, total.label("total"), held.label("held"))
        .group_by(sample.c.domain)
        .order_by(total.desc(), sample.c.domain)
        .limit(limit)
    )
    return [
        {
            "domain": row.domain,
            "total": int(row.total),
            "held": int(row.held or 0),
            "waiting": int(row.total) - int(row.held or 0),
        }
        for row in connection.execute(query)
    ]


def oldest_waiting(connection: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The not-final recipients queued longest ago, with their hosting and last error."""
    query = (
        select(
            recipients.c.id,
            hostings.c.name.label("hosting"),
            recipients.c.address.label("recipient"),
            recipients.c.status,
            recipients.c.queued_at,
            recipients.c.attempts,
            recipients.c.last_code,
            recipients.c.last_text,
            messages.c.subject,
        )
        .select_from(
            recipients.join(hostings, hostings.c.id == recipients.c.hosting_id).join(
                messages, messages.c.id == recipients.c.message_id
            )
        )
        .where(recipients.c.status.in_(_NOT_FINAL))
        .order_by(recipients.c.queued_at, recipients.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in connection.execute(query)]
