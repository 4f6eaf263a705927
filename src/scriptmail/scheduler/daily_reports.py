"""The daily error report job: for each hosting with failures on a day and no report yet, build
the report and queue it as system mail, exactly once (report_runs' key), also with several nodes."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from scriptmail.config import Settings
from scriptmail.reports.daily import DailyReport, render
from scriptmail.reports.schedule import is_late
from scriptmail.store import report_data, webhooks
from scriptmail.store.hostings import get_hosting
from scriptmail.store.stats import day_bounds
from scriptmail.store.system_mail import queue_system_mail
from scriptmail.webhooks.events import EventType


def build(connection: Connection, settings: Settings, hosting_id: int, day: date, late: bool = False) -> tuple[DailyReport, str]:
    """The report of one hosting and day, and who receives it."""
    hosting = get_hosting(connection, hosting_id)
    zone = ZoneInfo(settings.timezone)
    start, end = day_bounds(day, zone)
    rows, total = report_data.failures(connection, hosting_id, start, end, settings.reports.max_rows)
    counts = report_data.day_counts(connection, hosting_id, day)
    report = DailyReport(
        hosting=hosting.name,
        language=hosting.language,
        day=day,
        timezone=settings.timezone,
        sent=counts["sent"],
        bounced=counts["bounced"],
        expired=counts["expired"],
        suppressed=counts["suppressed"],
        rows=tuple(rows),
        total_failures=total,
        area_url=settings.reports.area_url.replace("{hosting}", hosting.name),
        late=late,
    )
    return report, hosting.report_recipient


def send(connection: Connection, settings: Settings, hosting_id: int, day: date, now: float, force: bool = False) -> int | None:
    """Queue the report of (hosting, day) in this transaction; None when there is nothing to say
    or (unless `force`) another run already sent it."""
    late = is_late(day, settings.reports.hour, ZoneInfo(settings.timezone), now)
    report, recipient = build(connection, settings, hosting_id, day, late=late and not force)
    if not report.total_failures:
        return None
    if not report_data.claim_run(connection, hosting_id, day, now, report.total_failures, late) and not force:
        return None
    subject, data = render(report, settings.control.notify_from, recipient, settings.hostname, now)
    queue_id = queue_system_mail(
        connection, settings.control.notify_from, recipient, data, subject, now, "daily report", domains=settings.domains
    )
    report_data.note_message(connection, hosting_id, day, queue_id)
    webhooks.hosting_event(connection, hosting_id, EventType.REPORT_SENT, {
        "day": day.isoformat(), "failures": report.total_failures, "to": recipient, "queue_id": queue_id, "late": report.late,
    }, now)  # fmt: skip
    return queue_id
