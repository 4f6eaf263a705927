"""Log retention: recipients final for longer than the retention, with their attempts, reports
and (once none of its recipients is left) their message, are deleted a batch at a time.

The counters since creation (hosting_totals) and per script stay: they are not the log.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, exists, select

from scriptmail.model import FINAL_STATUSES
from scriptmail.store.schema import activity_daily, attempts, bodies, inbound_reports, messages, recipients, report_runs

_FINAL = [status.value for status in FINAL_STATUSES]


def prune_log(connection: Connection, before: float, limit: int = 2000) -> int:
    """Delete up to `limit` recipients final since before `before`; returns how many."""
    doomed = connection.execute(
        select(recipients.c.id, recipients.c.message_id)
        .where(recipients.c.status.in_(_FINAL), recipients.c.updated_at < before)
        .limit(limit)
    ).all()
    if not doomed:
        return 0
    ids = [row.id for row in doomed]
    message_ids = {row.message_id for row in doomed}
    connection.execute(delete(attempts).where(attempts.c.recipient_id.in_(ids)))
    connection.execute(delete(inbound_reports).where(inbound_reports.c.recipient_id.in_(ids)))
    connection.execute(delete(recipients).where(recipients.c.id.in_(ids)))
    orphans = select(messages.c.id).where(
        messages.c.id.in_(message_ids), ~exists().where(recipients.c.message_id == messages.c.id)
    )
    orphan_ids = list(connection.execute(orphans).scalars())
    if orphan_ids:
        connection.execute(delete(bodies).where(bodies.c.message_id.in_(orphan_ids)))
        connection.execute(delete(messages).where(messages.c.id.in_(orphan_ids)))
    return len(ids)


def prune_days(connection: Connection, before_day: int) -> int:
    """Daily counters and report runs of days before `before_day` (a date ordinal)."""
    deleted = connection.execute(delete(activity_daily).where(activity_daily.c.day < before_day)).rowcount
    connection.execute(delete(report_runs).where(report_runs.c.day < before_day))
    return deleted
