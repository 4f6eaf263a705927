"""When daily reports are due (pure): the day before, at the configured local hour; days missed
while the service was down are still sent, marked late."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

LATE_AFTER = 3600.0  # a report sent more than an hour after its time says it is late


def due_at(day: date, hour: int, zone: ZoneInfo) -> float:
    """When the report of `day` is due: the next day at `hour`, local time."""
    following = day + timedelta(days=1)
    return datetime(following.year, following.month, following.day, hour, tzinfo=zone).timestamp()


def days_due(now: float, hour: int, zone: ZoneInfo, catch_up_days: int) -> list[date]:
    """The days whose report is due by `now`, newest first, going back `catch_up_days` days."""
    today = datetime.fromtimestamp(now, zone).date()
    latest = today - timedelta(days=1)
    if now < due_at(latest, hour, zone):
        latest -= timedelta(days=1)
    return [latest - timedelta(days=back) for back in range(catch_up_days)]


def is_late(day: date, hour: int, zone: ZoneInfo, now: float) -> bool:
    return now > due_at(day, hour, zone) + LATE_AFTER
