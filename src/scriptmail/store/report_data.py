"""What a hosting's daily error report lists: its failed recipients of one local day, and the
hostings that have such a day without a report yet."""

from __future__ import annotations

import heapq
from datetime import date

from sqlalchemy import Connection, func, select

from scriptmail.model import RecipientStatus
from scriptmail.reports.daily import FailureRow
from scriptmail.store.engine import upsert
from scriptmail.store.hostings import SYSTEM_HOSTING
from scriptmail.store.schema import activity_daily, hostings, messages, recipients, report_runs

# Purged is not a failure; suppressed mail is listed: the owner should know it was not sent.
FAILED = (RecipientStatus.BOUNCED.value, RecipientStatus.EXPIRED.value, RecipientStatus.SUPPRESSED.value)


def failures(connection: Connection, hosting_id: int, start: float, end: float, limit: int) -> tuple[list[FailureRow], int]:
    """The newest `limit` failures in [start, end) and how many there were in all.

    Each status is read along its (hosting, status, updated_at) index range, so a busy day costs
    the rows shown plus an index count, never a scan of the log.
    """
    total = 0
    ranges = []
    for status in FAILED:
        where = (
            recipients.c.hosting_id == hosting_id,
            recipients.c.status == status,
            recipients.c.updated_at >= start,
            recipients.c.updated_at < end,
        )
        total += connection.execute(select(func.count()).select_from(recipients).where(*where)).scalar_one()
        ranges.append(
            connection.execute(
                select(
                    recipients.c.updated_at, recipients.c.address, recipients.c.status, recipients.c.last_code,
                    recipients.c.last_text, messages.c.envelope_from, messages.c.subject, messages.c.script,
                    messages.c.cwd, messages.c.command,
                )  # fmt: skip
                .join(messages, messages.c.id == recipients.c.message_id)
                .where(*where)
                .order_by(recipients.c.updated_at.desc())
                .limit(limit)
            ).all()
        )
    rows = list(heapq.merge(*ranges, key=lambda row: -row.updated_at))[:limit]
    return [
        FailureRow(
            at=row.updated_at,
            sender=row.envelope_from,
            recipient=row.address,
            subject=row.subject,
            status=row.status,
            code=row.last_code,
            text=row.last_text,
            script=row.script or " ".join(part for part in (row.cwd, row.command) if part),
        )
        for row in rows
    ], total


def day_counts(connection: Connection, hosting_id: int, day: date) -> dict[str, int]:
    names = ("sent", "bounced", "expired", "suppressed")
    row = connection.execute(
        select(*(func.sum(activity_daily.c[name]).label(name) for name in names)).where(
            activity_daily.c.hosting_id == hosting_id, activity_daily.c.day == day.toordinal()
        )
    ).first()
    return {name: int(getattr(row, name) or 0) if row else 0 for name in names}


def due(connection: Connection, days: list[date]) -> list[tuple[int, date]]:
    """(hosting, day) pairs with failures on one of `days` and no report yet, oldest day first.

    The platform's own mail never gets a report: its failures are logged, not reported on.
    """
    ordinals = [day.toordinal() for day in days]
    done = select(report_runs.c.hosting_id).where(
        report_runs.c.hosting_id == activity_daily.c.hosting_id, report_runs.c.day == activity_daily.c.day
    )
    rows = connection.execute(
        select(activity_daily.c.hosting_id, activity_daily.c.day)
        .distinct()
        .join(hostings, hostings.c.id == activity_daily.c.hosting_id)
        .where(
            activity_daily.c.day.in_(ordinals),
            (activity_daily.c.bounced + activity_daily.c.expired + activity_daily.c.suppressed) > 0,
            hostings.c.name != SYSTEM_HOSTING,
            ~done.exists(),
        )
        .order_by(activity_daily.c.day, activity_daily.c.hosting_id)
    ).all()
    return [(row.hosting_id, date.fromordinal(row.day)) for row in rows]


def claim_run(connection: Connection, hosting_id: int, day: date, now: float, failures_count: int, late: bool) -> bool:
    """Mark the report of (hosting, day) as sent; False when another node already did (the key
    makes it exactly once: a racing insert waits for the first one's commit, then does nothing)."""
    inserted = connection.execute(
        upsert(connection, report_runs)
        .values(hosting_id=hosting_id, day=day.toordinal(), sent_at=now, failures=failures_count, late=int(late))
        .on_conflict_do_nothing()
        .returning(report_runs.c.hosting_id)
    ).first()
    return inserted is not None


def note_message(connection: Connection, hosting_id: int, day: date, message_id: int) -> None:
    connection.execute(
        report_runs.update()
        .where(report_runs.c.hosting_id == hosting_id, report_runs.c.day == day.toordinal())
        .values(message_id=message_id)
    )
