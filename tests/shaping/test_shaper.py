"""The shaping decisions, with time as a plain number: limits, slowing down, recovering."""

from __future__ import annotations

import pytest

from scriptmail.shaping.replies import asks_to_slow_down
from scriptmail.shaping.shaper import Shaper
from scriptmail.shaping.sites import Limits, build_table

DEFAULT = Limits(connections=4, messages_per_connection=50)


def shaper(**sites: dict) -> Shaper:
    return Shaper(build_table(DEFAULT, sites, shipped={}), slow_seconds=100.0, pause=10.0)


def taken(s: Shaper, site: str, start: float, seconds: float, step: float = 0.01) -> int:
    """How many messages the site takes when asked every `step` seconds."""
    count, now = 0, start
    while now < start + seconds:
        if s.take(site, now) == 0.0:
            count += 1
        now += step
    return count


def test_a_site_takes_its_per_minute_rate_and_no_more() -> None:
    s = shaper(fast={"domains": ["fast.example"], "per_minute": 600})
    got = taken(s, "fast", 0.0, 60.0)
    assert 600 <= got <= 611  # the rate, plus one second's burst at the start


def test_per_hour_holds_even_when_the_minute_would_allow_more() -> None:
    s = shaper(hourly={"domains": ["h.example"], "per_minute": 6000, "per_hour": 120})
    assert taken(s, "hourly", 0.0, 60.0, step=0.05) <= 2 + 2  # 120/h is 2 a minute, plus the burst
    assert 118 <= taken(s, "hourly", 60.0, 3600.0, step=1.0) <= 122


def test_rates_count_recipients_not_messages() -> None:
    s = shaper(fast={"domains": ["fast.example"], "per_minute": 600})  # 10 recipients a second
    messages, now = 0, 0.0
    while now < 60.0:
        if s.take("fast", now, recipients=5) == 0.0:
            messages += 1
        now += 0.01
    assert 120 <= messages <= 124  # 600 recipients a minute in messages of five, plus the burst
    # One message of more recipients than the burst still goes, and the next waits for it.
    s = shaper(slow={"domains": ["slow.example"], "per_minute": 60})
    assert s.take("slow", 0.0, recipients=8) == 0.0
    assert 7.9 < s.take("slow", 0.0) <= 8.0


def test_a_site_without_rates_is_limited_by_connections_only() -> None:
    s = shaper()
    assert taken(s, "own.example", 0.0, 1.0) == 100
    for _ in range(4):
        assert s.may_connect("own.example", 0.0)
        s.opened("own.example")
    assert not s.may_connect("own.example", 0.0)
    s.closed("own.example")
    assert s.may_connect("own.example", 0.0)


def test_a_421_pauses_the_site_halves_its_limits_and_it_recovers_by_itself() -> None:
    s = shaper(
        slow={"domains": ["slow.example"], "connections": 8, "per_minute": 600},
        other={"domains": ["o.example"], "per_minute": 600},
    )
    assert s.observe("slow", 421, "4.7.0 Try again later", 5.0)
    state = s.state("slow", 5.0)
    assert state.level == 1 and "Try again later" in state.reason
    assert state.limits.connections == 4 and state.limits.per_minute == 300
    assert not s.may_connect("slow", 6.0) and s.wait("slow", 6.0) == pytest.approx(9.0)
    # The other site is untouched.
    assert s.state("other", 6.0).level == 0 and s.take("other", 6.0) == 0.0
    # After the pause, the slowed rate: half of 600 a minute.
    assert 290 <= taken(s, "slow", 15.0, 60.0) <= 310
    # No complaint for slow_seconds: one level off, full speed again.
    assert s.state("slow", 106.0).level == 0 and s.state("slow", 106.0).limits.per_minute == 600
    assert s.state("slow", 106.0).reason == ""


def test_one_421_from_many_connections_counts_once_and_repeated_ones_slow_further() -> None:
    s = shaper(slow={"domains": ["slow.example"], "connections": 8})
    assert s.observe("slow", 421, "too many connections", 0.0)
    assert not s.observe("slow", 421, "too many connections", 0.1)  # the same complaint, other connections
    assert s.state("slow", 0.2).level == 1
    assert s.observe("slow", 421, "too many connections", 30.0)
    state = s.state("slow", 30.0)
    assert state.level == 2 and state.limits.connections == 2 and state.limits.per_minute == 30
    # Two quiet periods take both levels off, one at a time.
    assert s.state("slow", 131.0).level == 1
    assert s.state("slow", 231.0).level == 0


def test_a_site_is_never_slowed_below_one_connection_and_one_message() -> None:
    s = shaper(slow={"domains": ["slow.example"], "connections": 1, "per_minute": 1})
    for t in range(0, 300, 30):
        s.observe("slow", 421, "rate limited", float(t))
    limits = s.state("slow", 300.0).limits
    assert limits.connections == 1 and limits.per_minute == 1 and limits.messages_per_connection >= 1


def test_ordinary_deferrals_and_bounces_do_not_slow_a_site() -> None:
    s = shaper()
    assert not s.observe("own.example", 450, "4.2.1 mailbox busy", 0.0)
    assert not s.observe("own.example", 550, "5.7.1 rate limited forever", 0.0)
    assert not s.observe("own.example", 250, "ok", 0.0)
    state = s.state("own.example", 0.0)
    assert state.level == 0 and state.sent == 1 and state.deferred == 1


@pytest.mark.parametrize(
    "code, text, slow",
    [
        (421, "Service not available", True),
        (421, "", True),
        (450, "4.7.0 Try again later", True),
        (451, "4.7.1 rate limited, try later", True),
        (451, "Temporary local problem, try again later", False),  # no 4.7.x: the retry schedule's, not shaping's
        (451, "4.3.0 try again later", False),
        (452, "4.7.28 Our system has detected an unusual rate of unsolicited mail", False),
        (450, "4.2.1 The user you are trying to contact is receiving mail too quickly", False),
        (451, "4.3.0 Temporary server error", False),
        (550, "5.7.1 too many", False),
        (250, "ok", False),
        (None, "connection refused", False),
    ],
)
def test_which_replies_ask_to_slow_down(code: int | None, text: str, slow: bool) -> None:
    assert asks_to_slow_down(code, text) is slow
