"""What a hosting's owner sees at a glance: counters, volumes, bounces, scripts (issue 4).

Everything here reads summary rows (hosting_totals, activity_daily, activity, script_counts) or a
bounded range of one index, so a hosting with millions of logged recipients answers in
milliseconds. Field names of `counters` follow the reference API (sent, sentToday, maxPerDay, bounce).
"""

from __future__ import annotations

import heapq
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, func, select

from scriptmail.config import PlanSettings
from scriptmail.model import RecipientStatus
from scriptmail.store import activity
from scriptmail.store.schema import activity as activity_table
from scriptmail.store.schema import activity_daily, hosting_totals, messages, recipients, script_counts

MAX_BOUNCES = 100  # the reference's limit per page
_ERRORS = (RecipientStatus.BOUNCED.value, RecipientStatus.EXPIRED.value, RecipientStatus.SUPPRESSED.value)
_WAITING = (RecipientStatus.QUEUED, RecipientStatus.DEFERRED, RecipientStatus.SENDING, RecipientStatus.HELD)
# Built once: the counters call is polled by dashboards, and building its statements cost more
# than running them.
_TOTALS = activity.folded(hosting_totals, "hosting_id").where(hosting_totals.c.hosting_id == bindparam("hosting_id"))
_SENT_ON_DAY = select(func.sum(activity_daily.c.sent)).where(
    activity_daily.c.hosting_id == bindparam("hosting_id"), activity_daily.c.day == bindparam("day")
)


def counters(connection: Connection, hosting_id: int, plan: PlanSettings, now: float) -> dict[str, int]:
    """The reference's counters: sent since creation, sent today, the daily limit, unsent total."""
    totals = _totals(connection, hosting_id)
    today = connection.execute(_SENT_ON_DAY, {"hosting_id": hosting_id, "day": activity.day_of(now)}).scalar()
    sent, bounced, expired, suppressed = (totals.sent, totals.bounced, totals.expired, totals.suppressed) if totals else (0, 0, 0, 0)
    return {"sent": sent, "sentToday": int(today or 0), "maxPerDay": plan.max_per_day, "bounce": bounced + expired + suppressed}


def _totals(connection: Connection, hosting_id: int) -> SimpleNamespace | None:
    """The hosting's totals since creation (its stripes added up), or None before its first count."""
    row = connection.execute(_TOTALS, {"hosting_id": hosting_id}).first()
    return SimpleNamespace(**{name: int(value) for name, value in row._mapping.items()}) if row else None


def status_counts(connection: Connection, hosting_id: int) -> dict[str, int]:
    """Recipients per status: the waiting ones counted on the index, the final ones from the totals."""
    waiting = dict(
        connection.execute(
            select(recipients.c.status, func.count())
            .where(recipients.c.hosting_id == hosting_id, recipients.c.status.in_([s.value for s in _WAITING]))
            .group_by(recipients.c.status)
        ).all()
    )
    totals = _totals(connection, hosting_id)
    final = {name: getattr(totals, name) if totals else 0 for name in ("sent", "bounced", "expired", "purged", "suppressed")}
    return {status.value: int(waiting.get(status.value, 0) or final.get(status.value, 0)) for status in RecipientStatus}


def daily_volumes(connection: Connection, hosting_id: int, now: float, days: int = 30) -> list[dict[str, Any]]:
    """One row per local day, oldest first, the last `days` days including today (zeros included)."""
    last = activity.day_of(now)
    rows = {
        row.day: row
        for row in connection.execute(
            activity.folded(activity_daily, "hosting_id", "day").where(
                activity_daily.c.hosting_id == hosting_id, activity_daily.c.day > last - days
            )
        )
    }
    return [
        {
            "date": date.fromordinal(day).isoformat(),
            "accepted": int(rows[day].accepted) if day in rows else 0,
            "sent": int(rows[day].sent) if day in rows else 0,
            "bounced": int(rows[day].bounced) if day in rows else 0,
            "expired": int(rows[day].expired) if day in rows else 0,
            "held": int(rows[day].held) if day in rows else 0,
            "suppressed": int(rows[day].suppressed) if day in rows else 0,
        }
        for day in range(last - days + 1, last + 1)
    ]


def hourly_volumes(connection: Connection, hosting_id: int, now: float, zone: ZoneInfo, hours: int = 48) -> list[dict[str, Any]]:
    """One row per hour, oldest first, the last `hours` hours including the current one."""
    this_hour = int(now // 3600)
    hour = activity_table.c.minute // 60
    rows = {
        int(row.hour): row
        for row in connection.execute(
            select(
                hour.label("hour"),
                func.sum(activity_table.c.accepted).label("accepted"),
                func.sum(activity_table.c.sent).label("sent"),
                func.sum(activity_table.c.bounced).label("bounced"),
                func.sum(activity_table.c.held).label("held"),
            )
            .where(activity_table.c.hosting_id == hosting_id, activity_table.c.minute >= (this_hour - hours + 1) * 60)
            .group_by(hour)
        )
    }
    return [
        {
            "hour": datetime.fromtimestamp(h * 3600, zone).isoformat(timespec="minutes"),
            "accepted": int(rows[h].accepted) if h in rows else 0,
            "sent": int(rows[h].sent) if h in rows else 0,
            "bounced": int(rows[h].bounced) if h in rows else 0,
            "held": int(rows[h].held) if h in rows else 0,
        }
        for h in range(this_hour - hours + 1, this_hour + 1)
    ]


def bounces(connection: Connection, hosting_id: int, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    """Recipients in error (bounced or expired), newest first: date, recipient, message, and more.

    Each status is read newest first along its own index range, then the two are merged, so the
    cost grows with offset + limit, never with the size of the log.
    """
    wanted = offset + limit
    ranges = []
    for status in _ERRORS:
        ranges.append(
            connection.execute(
                select(
                    recipients.c.id,
                    recipients.c.updated_at,
                    recipients.c.address,
                    recipients.c.status,
                    recipients.c.last_code,
                    recipients.c.last_text,
                    recipients.c.message_id,
                )  # fmt: skip
                .where(recipients.c.hosting_id == hosting_id, recipients.c.status == status)
                .order_by(recipients.c.updated_at.desc())
                .limit(wanted)
            ).all()
        )
    merged = list(heapq.merge(*ranges, key=lambda row: -row.updated_at))[offset:wanted]
    subjects = dict(
        connection.execute(
            select(messages.c.id, messages.c.subject).where(messages.c.id.in_({row.message_id for row in merged}))
        ).all()
    )
    return [
        {
            "id": row.id,
            "date": row.updated_at,
            "to": row.address,
            "status": row.status,
            "code": row.last_code,
            "message": row.last_text,
            "subject": subjects.get(row.message_id, ""),
        }
        for row in merged
    ]


def scripts(connection: Connection, hosting_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """Originating scripts by how much they sent, with when they last sent and how many of their
    recipients bounced (hard bounces and DSNs; expired mail is not counted against the script)."""
    summed = activity.folded(script_counts, "hosting_id", "script").where(script_counts.c.hosting_id == hosting_id).subquery()
    return [
        {"script": row.script, "messages": int(row.messages), "recipients": int(row.recipients),
         "last_at": row.last_at, "bounced": int(row.bounced)}
        for row in connection.execute(select(summed).order_by(summed.c.messages.desc(), summed.c.script).limit(limit))
    ]  # fmt: skip


def day_bounds(day: date, zone: ZoneInfo) -> tuple[float, float]:
    """A local day as [start, end) UTC seconds."""
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = start + timedelta(days=1)
    return start.timestamp(), datetime(end.year, end.month, end.day, tzinfo=zone).timestamp()
