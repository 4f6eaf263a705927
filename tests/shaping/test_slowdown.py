"""The slow-down rules every delivery process applies to the state the store shares."""

from __future__ import annotations

from scriptmail.shaping import slowdown
from scriptmail.shaping.shaper import Shaper
from scriptmail.shaping.sites import Limits, SiteTable
from scriptmail.shaping.slowdown import CALM, Slowdown


def test_a_complaint_pauses_and_adds_a_level_and_the_same_complaint_again_only_extends_the_pause() -> None:
    first, new = slowdown.complain(CALM, 100.0, "421 4.7.0 try later", pause=60, slow_seconds=600)
    assert new and first == Slowdown(1, 100.0, 160.0, 700.0, "421 4.7.0 try later")
    again, new = slowdown.complain(first, 110.0, "421 again", pause=60, slow_seconds=600)
    assert not new and again.level == 1 and again.paused_until == 170.0 and again.reason == "421 4.7.0 try later"
    later, new = slowdown.complain(again, 300.0, "421 still", pause=60, slow_seconds=600)
    assert new and later.level == 2 and later.recovers_at == 900.0 and later.ends_at(600) == 1500.0


def test_levels_come_off_one_per_period_and_the_reason_goes_with_the_last() -> None:
    state = Slowdown(3, 0.0, 60.0, 600.0, "421 slow down")
    assert slowdown.recovered(state, 599.0, 600) == state
    assert slowdown.recovered(state, 600.0, 600).level == 2
    assert slowdown.recovered(state, 1300.0, 600) == Slowdown(1, 0.0, 60.0, 1800.0, "421 slow down")
    assert slowdown.recovered(state, 99999.0, 600).level == 0 and slowdown.recovered(state, 99999.0, 600).reason == ""


def test_the_slower_view_wins_and_the_longer_pause_stays() -> None:
    mine = Slowdown(1, 10.0, 500.0, 610.0, "mine")
    other = Slowdown(2, 5.0, 65.0, 605.0, "other")
    assert slowdown.slower(mine, other) == Slowdown(2, 5.0, 500.0, 605.0, "other")
    assert slowdown.slower(other, CALM) == other


def test_a_shaper_adopts_another_processs_slowdown_and_recovers_with_it() -> None:
    table = SiteTable(Limits(10, 100), {})
    told, untold = Shaper(table, slow_seconds=600, pause=5), Shaper(table, slow_seconds=600, pause=5)
    assert told.observe("slow", 421, "4.7.0 Try again later", 100.0)
    shared = told.slowdown_of("slow", 100.0)
    assert untold.adopt("slow", shared, 100.5)
    state = untold.state("slow", 100.5)
    assert state.level == 1 and state.limits.connections == 5 and "Try again later" in state.reason
    assert untold.wait("slow", 101.0) == 4.0  # the pause holds here too
    assert not untold.adopt("slow", shared, 101.0)  # read again: nothing new
    assert untold.state("slow", 700.0).level == 0 == told.state("slow", 700.0).level  # both recover at once
    assert untold.adopt("slow", shared, 700.0) is False  # an old row does not slow it down again


def test_the_stores_answer_to_a_processs_own_complaint_is_taken_as_it_is() -> None:
    table = SiteTable(Limits(10, 100), {})
    shaper = Shaper(table, slow_seconds=600, pause=5)
    assert shaper.observe("slow", 421, "4.7.0 try later", 100.5)
    from_store = Slowdown(1, 100.0, 105.5, 700.0, "421 4.7.0 try later")  # another process's, 0.5 s earlier
    shaper.adopt("slow", from_store, 100.6, exactly=True)
    assert shaper.slowdown_of("slow", 100.6) == from_store  # one complaint, one recovery time everywhere
