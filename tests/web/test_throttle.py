"""Growing delays after failed logins, and the per-token bucket of the API."""

from __future__ import annotations

from scriptmail.web.throttle import MAX_DELAY, delay_after, gcra_take, wait_left


def test_three_mistakes_are_free_then_the_wait_doubles_up_to_a_cap() -> None:
    assert [delay_after(n) for n in range(7)] == [0, 0, 0, 2, 4, 8, 16]
    assert delay_after(100) == MAX_DELAY


def test_the_longest_wait_of_account_and_address_applies() -> None:
    counts = {"account:a@x.test": (4, 1000.0), "ip:192.0.2.1": (10, 990.0)}
    assert wait_left(counts, 1001.0) == 990.0 + delay_after(10) - 1001.0
    assert wait_left({}, 1000.0) == 0.0
    assert wait_left({"account:a@x.test": (2, 1000.0)}, 1000.0) == 0.0


def test_a_burst_goes_at_once_then_requests_wait_for_the_refill() -> None:
    tat = None
    waits = []
    for _ in range(4):
        tat, wait = gcra_take(tat, 0.0, per_minute=6, burst=3)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 10.0]  # 6 a minute: one every 10 s
    tat, wait = gcra_take(tat, 5.0, per_minute=6, burst=3)
    assert wait == 5.0  # half refilled
    tat, wait = gcra_take(tat, 10.0, per_minute=6, burst=3)
    assert wait == 0.0


def test_a_long_pause_refills_to_the_burst_and_no_further() -> None:
    tat, _ = gcra_take(30.0, 3600.0, per_minute=6, burst=3)
    waits = [gcra_take(tat, 3600.0, per_minute=6, burst=3)[1]]
    for _ in range(3):
        tat, wait = gcra_take(tat, 3600.0, per_minute=6, burst=3)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 10.0]  # the first of the burst was taken above
