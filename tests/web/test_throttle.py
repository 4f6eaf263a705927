"""Growing delays after failed logins."""

from __future__ import annotations

from scriptmail.web.throttle import MAX_DELAY, delay_after, wait_left


def test_three_mistakes_are_free_then_the_wait_doubles_up_to_a_cap() -> None:
    assert [delay_after(n) for n in range(7)] == [0, 0, 0, 2, 4, 8, 16]
    assert delay_after(100) == MAX_DELAY


def test_the_longest_wait_of_account_and_address_applies() -> None:
    counts = {"account:a@x.test": (4, 1000.0), "ip:192.0.2.1": (10, 990.0)}
    assert wait_left(counts, 1001.0) == 990.0 + delay_after(10) - 1001.0
    assert wait_left({}, 1000.0) == 0.0
    assert wait_left({"account:a@x.test": (2, 1000.0)}, 1000.0) == 0.0
