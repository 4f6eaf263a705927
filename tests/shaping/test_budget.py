"""The shared shaping decisions, as plain values: reserving rate tokens and opening connections."""

from __future__ import annotations

from scriptmail.shaping import budget


def test_a_rate_grants_a_seconds_burst_then_its_pace() -> None:
    limits = budget.rates(per_minute=600, per_hour=0)  # 10 a second, 10 in a row
    granted, tats, wait = budget.grant(limits, (0.0,), need=1, want=50, now=100.0)
    assert (granted, wait) == (10, 0.0)
    granted, tats, wait = budget.grant(limits, tats, need=1, want=5, now=100.0)
    assert granted == 0 and 0.09 < wait <= 0.11  # the next token in a tenth of a second
    granted, tats, _ = budget.grant(limits, tats, need=1, want=5, now=100.5)
    assert granted == 5  # half a second later: five more


def test_a_message_of_many_recipients_goes_and_the_next_waits_for_it() -> None:
    limits = budget.rates(per_minute=60, per_hour=0)  # one a second
    granted, tats, _ = budget.grant(limits, (0.0,), need=5, want=5, now=10.0)
    assert granted == 5  # all five recipients of one message count...
    granted, _, wait = budget.grant(limits, tats, need=1, want=1, now=10.0)
    assert granted == 0 and 4.9 < wait <= 5.0  # ...so the next waits five seconds


def test_the_hourly_rate_caps_what_the_minute_allows() -> None:
    limits = budget.rates(per_minute=6000, per_hour=120)  # the hour: 2 in a row, one each 30 s
    granted, tats, _ = budget.grant(limits, (0.0, 0.0), need=1, want=16, now=0.0)
    assert granted == 2
    granted, _, wait = budget.grant(limits, tats, need=1, want=16, now=1.0)
    assert granted == 0 and 28 < wait <= 30


def test_no_rate_grants_everything() -> None:
    assert budget.grant((), (), need=3, want=8, now=0.0) == (8, (), 0.0)


def test_batches_are_small_and_never_less_than_a_message() -> None:
    assert budget.batch_size(1200, 0, 1) == 5  # a quarter of 20 a second
    assert budget.batch_size(60, 0, 1) == 1
    assert budget.batch_size(1_000_000, 0, 1) == 16
    assert budget.batch_size(60, 0, 7) == 7


def test_connections_count_every_holder() -> None:
    assert budget.may_open(2, held_elsewhere=1, held_here=0)
    assert not budget.may_open(2, held_elsewhere=1, held_here=1)
    assert not budget.may_open(2, held_elsewhere=2, held_here=0)
