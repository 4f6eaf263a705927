"""The hourly quota and the daily limit, as pure arithmetic on per-minute counts."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from scriptmail.config import PlanSettings, Settings
from scriptmail.control.quota import QuotaGate, day_start, next_day_start, room

UTC = ZoneInfo("UTC")
MADRID = ZoneInfo("Europe/Madrid")
NOW = 1_800_000_000.0  # a Friday, 2027-01-15 08:00 UTC
MINUTE = int(NOW // 60)


def test_an_unlimited_plan_has_no_room_count() -> None:
    assert room(PlanSettings(hourly=0, max_per_day=0), [(MINUTE, 10**9)], NOW, UTC).count is None


def test_room_is_the_quota_minus_what_the_last_hour_sent() -> None:
    plan = PlanSettings(hourly=100)
    assert room(plan, [], NOW, UTC).count == 100
    assert room(plan, [(MINUTE - 30, 40), (MINUTE, 20)], NOW, UTC).count == 40


def test_a_full_window_says_when_room_comes_back_and_why() -> None:
    plan = PlanSettings(hourly=100)
    full = room(plan, [(MINUTE - 50, 70), (MINUTE - 10, 30)], NOW, UTC)
    assert full.count == 0
    # The 70 of fifty minutes ago leave the window first; the window covers 61 minutes.
    assert full.until == (MINUTE - 50 + 61) * 60
    assert full.reason == "hourly quota of 100 reached"


def test_minutes_older_than_the_window_do_not_count() -> None:
    plan = PlanSettings(hourly=10)
    assert room(plan, [(MINUTE - 61, 10)], NOW, UTC).count == 10
    assert room(plan, [(MINUTE - 60, 10)], NOW, UTC).count == 0  # conservative: never more than the quota in 3600 s


def test_no_span_of_3600_seconds_ever_holds_more_than_the_quota() -> None:
    """Simulate a script that sends as fast as it may for five hours, minute by minute."""
    plan = PlanSettings(hourly=100)
    sent: list[tuple[int, int]] = []
    for minute in range(MINUTE, MINUTE + 300):
        now = minute * 60.0 + 30
        allowed = room(plan, sent, now, UTC).count
        if allowed:
            sent.append((minute, min(allowed, 7)))
    for start in range(MINUTE, MINUTE + 300):
        assert sum(count for minute, count in sent if start <= minute < start + 60) <= 100
    assert sum(count for _, count in sent) >= 100 * 4  # and it is not starved either


def test_the_daily_limit_counts_from_local_midnight() -> None:
    plan = PlanSettings(hourly=0, max_per_day=50)
    midnight = day_start(NOW, MADRID)
    assert midnight == NOW - 9 * 3600  # 08:00 UTC is 09:00 in Madrid in January
    before = int(midnight // 60) - 1
    assert room(plan, [(before, 50), (MINUTE, 20)], NOW, MADRID).count == 30
    full = room(plan, [(MINUTE, 50)], NOW, MADRID)
    assert full.count == 0 and full.until == next_day_start(NOW, MADRID) == midnight + 86400
    assert full.reason == "daily limit of 50 reached"


def test_the_next_day_starts_at_midnight_across_a_daylight_saving_change() -> None:
    spring = 1_774_760_400.0  # 2026-03-29 05:00 UTC: Madrid moved to summer time that night
    assert next_day_start(spring, MADRID) - day_start(spring, MADRID) == 23 * 3600


def test_both_limits_wait_for_the_later_one() -> None:
    plan = PlanSettings(hourly=10, max_per_day=10)
    full = room(plan, [(MINUTE, 10)], NOW, UTC)
    assert full.until == next_day_start(NOW, UTC)
    assert "hourly quota" in full.reason and "daily limit" in full.reason


def test_the_gate_forgets_a_hosting_once_its_room_is_back() -> None:
    settings = Settings()
    gate = QuotaGate(settings.plan, UTC)
    gate.exhaust(7, NOW + 60)
    assert gate.excluded(NOW) == {7}
    assert gate.excluded(NOW + 60) == set()
    assert gate.plan("removed-plan") is settings.plans["default"]
