"""Whether a failed recipient's sender gets a notice: the pure decision."""

from __future__ import annotations

from scriptmail.dsn.decide import Outcome, was_quiet, why_not
from scriptmail.model import HostingState


def test_the_recorded_fact_wins_over_the_state_now() -> None:
    assert was_quiet(1, HostingState.ACTIVE)  # failed during a spam block, since lifted
    assert not was_quiet(0, HostingState.SPAM)  # failed before the block
    assert was_quiet(None, HostingState.BOUNCE) and not was_quiet(None, HostingState.BLOCKED)  # older events


def test_why_no_notice_goes() -> None:
    assert why_not("", False, True, False, 0, 20) is Outcome.NULL_SENDER
    assert why_not("a@x.test", False, True, True, 0, 20) is Outcome.OWN_MAIL
    assert why_not("a@x.test", False, False, False, 0, 20) is Outcome.SWITCHED_OFF
    assert why_not("a@x.test", True, True, False, 0, 20) is Outcome.SPAM_BLOCK
    assert why_not("a@x.test", False, True, False, 20, 20) is Outcome.HOURLY_CAP
    assert why_not("a@x.test", False, True, False, 19, 20) is None
