"""The retry schedule and reply classification, as plain values."""

from __future__ import annotations

import pytest

from scriptmail.delivery.retry import Schedule, status_for_reply
from scriptmail.model import RecipientStatus


def test_backoff_doubles_from_five_minutes_and_caps_near_an_hour() -> None:
    schedule = Schedule()
    assert [schedule.delay(n) for n in range(1, 7)] == [300, 600, 1200, 2400, 4000, 4000]


def test_a_failure_within_the_lifetime_is_deferred() -> None:
    status, next_at = Schedule().after_failure(attempts=2, first_queued_at=1000.0, now=2000.0)
    assert status is RecipientStatus.DEFERRED and next_at == 2600.0


def test_a_failure_after_five_days_expires() -> None:
    five_days = 5 * 24 * 3600
    status, _ = Schedule().after_failure(attempts=40, first_queued_at=0.0, now=five_days)
    assert status is RecipientStatus.EXPIRED


@pytest.mark.parametrize(
    ("code", "status"),
    [(250, "sent"), (251, "sent"), (421, "deferred"), (451, "deferred"), (452, "deferred"),
     (550, "bounced"), (554, "bounced"), (None, "deferred"), (0, "deferred")],
)
def test_replies_are_classified_by_their_first_digit(code: int | None, status: str) -> None:
    assert status_for_reply(code) == status
