"""The policy engine: each automatic block fires on its own signal, and never on normal traffic."""

from __future__ import annotations

import pytest

from scriptmail.config import PlanSettings
from scriptmail.control.policy import Signals, evaluate, is_unknown_user, needs_baseline
from scriptmail.control.states import Action
from scriptmail.model import HostingState

PLAN = PlanSettings(hourly=200)
ACTIVE, FORCED = HostingState.ACTIVE, HostingState.FORCED

NORMAL = Signals(
    accepted_hour=120,
    flagged_hour=5,
    hourly_baseline=[100] * 168,
    outcomes=[(10, 0)] * 12,
    unknown_recent=2,
)


def test_normal_traffic_blocks_nothing() -> None:
    assert evaluate(PLAN, ACTIVE, NORMAL) is None
    assert evaluate(PLAN, ACTIVE, Signals()) is None


def test_mostly_spammy_content_is_spam() -> None:
    found = evaluate(PLAN, ACTIVE, Signals(accepted_hour=40, flagged_hour=30))
    assert found is not None and found.action is Action.DETECT_SPAM
    assert "30 of the 40 messages" in found.reason


def test_a_few_spammy_messages_are_not_enough() -> None:
    assert evaluate(PLAN, ACTIVE, Signals(accepted_hour=19, flagged_hour=19)) is None  # below spam_min_messages
    assert evaluate(PLAN, ACTIVE, Signals(accepted_hour=40, flagged_hour=20)) is None  # exactly half: not above


def test_a_sudden_volume_far_above_the_baseline_is_spam() -> None:
    found = evaluate(PLAN, ACTIVE, Signals(accepted_hour=2000, hourly_baseline=[0] * 160 + [50] * 8))
    assert found is not None and found.action is Action.DETECT_SPAM and "sudden volume" in found.reason


def test_a_busy_site_that_is_always_busy_is_not_spam() -> None:
    assert evaluate(PLAN, ACTIVE, Signals(accepted_hour=2000, hourly_baseline=[400] * 168)) is None
    # Under the floor the baseline is not even read.
    assert not needs_baseline(PLAN, Signals(accepted_hour=500))
    assert evaluate(PLAN, ACTIVE, Signals(accepted_hour=499, hourly_baseline=[0] * 168)) is None


def test_many_unknown_recipients_are_spam() -> None:
    found = evaluate(PLAN, ACTIVE, Signals(unknown_recent=20))
    assert found is not None and found.action is Action.DETECT_SPAM and "do not exist" in found.reason


def test_spam_complaints_are_spam() -> None:
    assert evaluate(PLAN, ACTIVE, Signals(complaints_recent=4)) is None
    found = evaluate(PLAN, ACTIVE, Signals(complaints_recent=5))
    assert found is not None and found.action is Action.DETECT_SPAM
    assert found.reason == "5 recipients reported these messages as spam in the last 24 hour(s)"


def test_a_high_bounce_ratio_over_the_last_n_is_bounce() -> None:
    found = evaluate(PLAN, ACTIVE, Signals(outcomes=[(3, 2)] * 10))  # 20 of the last 50
    assert found is not None and found.action is Action.DETECT_BOUNCE
    assert found.reason == "20 of the last 50 recipients bounced (40%; the limit is 20%)"
    assert evaluate(PLAN, ACTIVE, Signals(outcomes=[(9, 1)] * 5)) is None  # 10 %


def test_only_the_newest_n_outcomes_count() -> None:
    recent_failures = [(0, 10)] * 5 + [(1000, 0)] * 50
    assert evaluate(PLAN, ACTIVE, Signals(outcomes=recent_failures)) is not None
    assert evaluate(PLAN, ACTIVE, Signals(outcomes=[(0, 5)] * 3)) is None  # 15 attempts: too few to judge


def test_forced_doubles_the_bounce_threshold() -> None:
    forty_percent = Signals(outcomes=[(3, 2)] * 10)
    assert evaluate(PLAN, FORCED, forty_percent) is None
    found = evaluate(PLAN, FORCED, Signals(outcomes=[(2, 3)] * 10))
    assert found is not None and "the limit is 40%" in found.reason


def test_spam_wins_over_bounce() -> None:
    both = Signals(unknown_recent=50, outcomes=[(0, 10)] * 5)
    found = evaluate(PLAN, ACTIVE, both)
    assert found is not None and found.action is Action.DETECT_SPAM


@pytest.mark.parametrize("state", [s for s in HostingState if s not in (ACTIVE, FORCED)])
def test_a_hosting_that_does_not_send_is_not_judged(state: HostingState) -> None:
    assert evaluate(PLAN, state, Signals(unknown_recent=500)) is None


def test_the_unlimited_plan_has_no_automatic_blocks() -> None:
    assert evaluate(PlanSettings(hourly=0, policies=False), ACTIVE, Signals(unknown_recent=500)) is None


@pytest.mark.parametrize(
    ("code", "text", "unknown"),
    [
        (550, "5.1.1 <x@y.test>: Recipient address rejected: User unknown", True),
        (550, "No such user here", True),
        (553, "5.1.1 bad destination mailbox", True),
        (550, "5.7.1 message refused as spam", False),
        (552, "5.2.2 mailbox full", False),
        (450, "4.1.1 user unknown (try later)", False),  # temporary: not a bounce
        (None, "5.1.1 no route", False),
    ],
)
def test_unknown_user_failures_are_recognised(code: int | None, text: str, unknown: bool) -> None:
    assert is_unknown_user(code, text) is unknown
