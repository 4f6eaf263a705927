"""When daily reports are due, in the platform's time zone."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from scriptmail.reports.schedule import days_due, due_at, is_late

MADRID = ZoneInfo("Europe/Madrid")


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=MADRID).timestamp()


def test_yesterday_is_due_from_the_configured_local_hour() -> None:
    assert days_due(_at("2026-11-29T05:59"), 6, MADRID, 2) == [date(2026, 11, 27), date(2026, 11, 26)]
    assert days_due(_at("2026-11-29T06:00"), 6, MADRID, 2) == [date(2026, 11, 28), date(2026, 11, 27)]


def test_a_report_is_late_an_hour_after_its_time() -> None:
    day = date(2026, 11, 28)
    assert due_at(day, 6, MADRID) == _at("2026-11-29T06:00")
    assert not is_late(day, 6, MADRID, _at("2026-11-29T06:59"))
    assert is_late(day, 6, MADRID, _at("2026-11-29T07:01"))
    assert is_late(day, 6, MADRID, _at("2026-12-02T06:30"))


def test_days_are_local_across_a_daylight_saving_change() -> None:
    # Madrid leaves summer time on 2026-10-25: that day has 25 hours; its report is still due at 06:00.
    assert due_at(date(2026, 10, 25), 6, MADRID) == _at("2026-10-26T06:00")
    assert days_due(_at("2026-10-26T06:00"), 6, MADRID, 1) == [date(2026, 10, 25)]
