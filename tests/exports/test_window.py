"""The export window: what a start and an end typed mean, the defaults, and the clear refusals."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scriptmail.exports import window

UTC = ZoneInfo("UTC")
MADRID = ZoneInfo("Europe/Madrid")
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc).timestamp()


def _at(*parts: int, zone: ZoneInfo = UTC) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()


def test_days_include_the_end_day_and_times_are_read_in_the_zone() -> None:
    assert window.read("2026-11-01", "2026-11-30", NOW, MADRID) == window.Window(
        _at(2026, 11, 1, zone=MADRID), _at(2026, 12, 1, zone=MADRID)
    )
    assert window.read("2026-11-01T08:30", "2026-11-01T09:00:15", NOW, UTC) == window.Window(
        _at(2026, 11, 1, 8, 30), _at(2026, 11, 1, 9, 0, 15)
    )
    assert window.read("2026-11-01T08:30+02:00", None, NOW, UTC).since == _at(2026, 11, 1, 6, 30)


def test_without_a_start_the_window_is_the_last_month_and_without_an_end_it_ends_now() -> None:
    assert window.read(None, None, NOW, UTC) == window.Window(NOW - 31 * 86400, NOW)
    assert window.read("", "  ", NOW, UTC) == window.Window(NOW - 31 * 86400, NOW)
    assert window.read(None, "2026-01-31", NOW, UTC) == window.Window(_at(2026, 1, 1), _at(2026, 2, 1))
    assert window.read("2025-12-02T12:00", None, NOW, UTC).since == NOW - 365 * 86400


@pytest.mark.parametrize(
    ("since", "until", "field", "message"),
    [
        ("yesterday", None, "since", window.NOT_A_MOMENT),
        ("2026-13-01", None, "since", window.NOT_A_MOMENT),
        ("2026-02-30", None, "since", window.NOT_A_MOMENT),
        (None, "2026-11-01T25:00", "until", window.NOT_A_MOMENT),
        ("٢٠٢٦-١١-٠١", None, "since", window.NOT_A_MOMENT),  # digits of another script
        ("2026-11-01\x00", None, "since", window.NOT_A_MOMENT),
        ("2026-11-01T10:00\x00", None, "since", window.NOT_A_MOMENT),
        ("1" * 5000, None, "since", window.NOT_A_MOMENT),
        ("-2026-11-01", None, "since", window.NOT_A_MOMENT),
        ("1969-12-31", None, "since", window.TOO_EARLY),
        ("2026-11-02", "2026-11-01", "until", window.REVERSED),
        ("2020-01-01", "2026-01-01", "since", window.TOO_LONG),
        ("2026-12-03", None, "since", window.REVERSED),  # a start after now and no end
    ],
)
def test_bad_windows_are_refused_by_field_with_a_reason(since, until, field: str, message: str) -> None:
    with pytest.raises(window.BadWindow) as refused:
        window.read(since, until, NOW, UTC)
    assert (refused.value.field, refused.value.message) == (field, message)
    if message == window.TOO_LONG:
        assert str(refused.value) == "The window is longer than 366 days: choose a shorter one."


@given(st.text(max_size=60), st.text(max_size=60))
def test_any_text_gives_a_window_or_a_bad_window(since: str, until: str) -> None:
    try:
        found = window.read(since, until, NOW, MADRID)
    except window.BadWindow:
        return
    assert 0 <= found.since <= found.until and found.until - found.since <= 366 * 86400
