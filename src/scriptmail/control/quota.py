"""The sending quota (DESIGN.md §3): how many more recipients a hosting may send now, and when
room comes back once it may not. Pure: the counts come from store.activity.

The hourly window is counted in whole minutes and includes the minute that began just over an
hour ago, so no 3600 s span ever holds more than the quota (it may hold up to a minute less).
Only a recipient's first attempt counts: retries of deferred mail are not new mail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scriptmail.config import PlanSettings

WINDOW_MINUTES = 61  # the current minute and the 60 before it


def hour_window_start(now: float) -> int:
    """The first minute counted by the rolling hour at `now`."""
    return int(now // 60) - (WINDOW_MINUTES - 1)


def day_start(now: float, zone: ZoneInfo) -> float:
    """Midnight of `now`'s day in the platform's time zone, as UTC seconds."""
    local = datetime.fromtimestamp(now, zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def next_day_start(now: float, zone: ZoneInfo) -> float:
    local = datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return (local + timedelta(days=1, hours=3)).replace(hour=0).timestamp()  # safe across DST changes


@dataclass(frozen=True, slots=True)
class Room:
    """How many more recipients may start now, and if none, when that changes and why."""

    count: int | None  # None: no limit
    until: float | None = None  # when a full window frees room
    reason: str = ""


def room(plan: PlanSettings, dispatched: list[tuple[int, int]], now: float, zone: ZoneInfo) -> Room:
    """Room left under the plan, given (minute, first sends) since the earlier of the hour and day windows."""
    if not plan.hourly and not plan.max_per_day:
        return Room(None)
    left: list[tuple[int, float | None, str]] = []
    if plan.hourly:
        start = hour_window_start(now)
        in_hour = [(minute, count) for minute, count in dispatched if minute >= start]
        used = sum(count for _, count in in_hour)
        until = None
        if used >= plan.hourly:
            # Room comes back when enough of the oldest minutes have left the window.
            excess = used - plan.hourly
            for minute, count in in_hour:
                excess -= count
                if excess < 0:
                    until = (minute + WINDOW_MINUTES) * 60.0
                    break
        left.append((plan.hourly - used, until, f"hourly quota of {plan.hourly} reached"))
    if plan.max_per_day:
        start_minute = int(day_start(now, zone) // 60)
        used = sum(count for minute, count in dispatched if minute >= start_minute)
        until = next_day_start(now, zone) if used >= plan.max_per_day else None
        left.append((plan.max_per_day - used, until, f"daily limit of {plan.max_per_day} reached"))
    count, until, reason = min(left, key=lambda item: item[0])
    if count > 0:
        return Room(count)
    # Every exhausted limit must free room; wait for the one that frees it last.
    untils = [u for c, u, _ in left if c <= 0 and u is not None]
    reasons = [r for c, _, r in left if c <= 0]
    return Room(0, max(untils) if untils else now + 60, "; ".join(reasons))


def earliest_minute(plan: PlanSettings, now: float, zone: ZoneInfo) -> int:
    """The oldest minute `room` needs counts for."""
    starts = [hour_window_start(now)]
    if plan.max_per_day:
        starts.append(int(day_start(now, zone) // 60))
    return min(starts)


@dataclass
class QuotaGate:
    """What a delivery agent remembers between claims: hostings out of room, until when.

    A hosting out of room is left out of the claim query itself, so a backlog of a million
    recipients of one hosting never fills the claim batches of the others.
    """

    plan: Callable[[str], PlanSettings]  # a hosting's plan by name (Settings.plan: unknown -> default)
    zone: ZoneInfo
    exhausted: dict[int, float] = field(default_factory=dict)  # hosting id -> when room returns
    waits: list[tuple[int, int, float, str]] = field(default_factory=list)  # for the log: (hosting, how many, until, why)

    def excluded(self, now: float) -> set[int]:
        for hosting_id in [h for h, until in self.exhausted.items() if until <= now]:
            del self.exhausted[hosting_id]
        return set(self.exhausted)

    def exhaust(self, hosting_id: int, until: float) -> None:
        self.exhausted[hosting_id] = until


def describe_wait(reason: str, until: float) -> str:
    """The text a waiting recipient carries in the log."""
    return f"waiting: {reason}; sending resumes at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(until))}"
