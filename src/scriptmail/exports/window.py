"""The time window an export reads: every export of the log or the bounces reads the mail received
within one, so a filter that matches nothing costs the window, never the whole log. Pure: the
texts typed, the clock and the time zone in; the window or a typed error out.

A moment is `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]`, with an offset or in the given zone. An end
given as a day includes that day, as the log's own filter does. Without a start the window is the
DEFAULT_DAYS before its end; without an end it ends now. It may not be longer than MAX_DAYS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scriptmail.catalogues import N_

DEFAULT_DAYS = 31
MAX_DAYS = 366
_LONGEST = 40  # characters of a moment ("2026-12-01T10:00:00.000000+05:30" is 32)

NOT_A_MOMENT = N_("Not a date or time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM.")
TOO_EARLY = N_("Too early: the window starts in 1970 at the earliest.")
REVERSED = N_("The start of the window is after its end.")
TOO_LONG = N_("The window is longer than %(count)s days: choose a shorter one.")


class BadWindow(ValueError):
    """A window that cannot be read: `field` is since or until, `message` a msgid (with `count`)."""

    def __init__(self, field: str, message: str, count: int | None = None) -> None:
        super().__init__(message % {"count": count} if count is not None else message)
        self.field, self.message, self.count = field, message, count


@dataclass(frozen=True, slots=True)
class Window:
    since: float  # included
    until: float  # excluded


def _moment(text: str, zone: ZoneInfo, field: str, end: bool) -> float:
    text = text.strip()
    if len(text) > _LONGEST or not text.isascii() or not text.isprintable() or not text[:1].isdigit():
        raise BadWindow(field, NOT_A_MOMENT)
    try:
        if len(text) == 10:  # a whole day
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(), zone)
        else:
            moment = datetime.fromisoformat(text)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
        seconds = moment.timestamp()
    except (ValueError, OverflowError):
        raise BadWindow(field, NOT_A_MOMENT) from None
    if seconds < 0:
        raise BadWindow(field, TOO_EARLY)
    return seconds


def read(
    since: str | None, until: str | None, now: float, zone: ZoneInfo,
    default_days: int = DEFAULT_DAYS, max_days: int = MAX_DAYS,
) -> Window:  # fmt: skip
    """The window the two texts give (either may be empty or None)."""
    end = _moment(until, zone, "until", end=True) if until and until.strip() else now
    start = _moment(since, zone, "since", end=False) if since and since.strip() else max(0.0, end - default_days * 86400)
    if start >= end:
        raise BadWindow("until" if until else "since", REVERSED)
    if end - start > max_days * 86400:
        raise BadWindow("since", TOO_LONG, max_days)
    return Window(start, end)
