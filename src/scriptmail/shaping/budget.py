"""The shared shaping decisions, as functions of plain values: how many of a site's rate tokens a
process may reserve now, and whether it may open another connection. The store keeps the numbers
(store.site_shares) so that every delivery process and node counts against the same limits.

A rate is a GCRA: one "theoretical arrival time" per site and period. A site's per-minute rate
allows a second's worth in a row (as shaper.Bucket does); its per-hour rate a minute's worth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_period` recipients each `period` seconds, at most `burst` in a row."""

    per_period: int
    period: float

    @property
    def interval(self) -> float:
        return self.period / self.per_period

    @property
    def burst(self) -> float:
        return max(1.0, self.per_period / 60)


def rates(per_minute: int, per_hour: int) -> tuple[Rate, ...]:
    """The rates a site's limits set (0: no limit)."""
    return tuple(Rate(n, period) for n, period in ((per_minute, 60.0), (per_hour, 3600.0)) if n > 0)


def room(rate: Rate, tat: float, now: float) -> int:
    """How many tokens the rate has now, given its theoretical arrival time."""
    return max(0, math.floor(rate.burst - max(0.0, tat - now) / rate.interval + 1e-9))


def grant(
    limits: tuple[Rate, ...], tats: tuple[float, ...], need: int, want: int, now: float
) -> tuple[int, tuple[float, ...], float]:
    """Reserve tokens from every rate at once: up to `want` while they last, and at least `need`
    (one message's recipients) as soon as each rate has a token, as a bucket lets a message of
    many recipients through and then waits longer. Returns (granted, the new tats, seconds until
    a token is there when none was granted)."""
    if not limits:
        return max(need, want), tats, 0.0
    rooms = [room(rate, tat, now) for rate, tat in zip(limits, tats)]
    if min(rooms) < 1:
        wait = max(max(0.0, tat - now) - (rate.burst - 1) * rate.interval for rate, tat in zip(limits, tats))
        return 0, tats, max(wait, 1e-3)
    granted = max(need, min([want, *rooms]))
    return granted, tuple(max(tat, now) + granted * rate.interval for rate, tat in zip(limits, tats)), 0.0


def batch_size(per_minute: int, per_hour: int, need: int) -> int:
    """How many tokens to ask for at once: a quarter of a second's worth, so a busy site costs the
    store one call per few recipients, while a process never sits on much of another's share."""
    smallest = min([r.burst for r in rates(per_minute, per_hour)], default=1.0)
    return max(need, min(16, int(smallest // 4)), 1)


def may_open(limit: int, held_elsewhere: int, held_here: int) -> bool:
    """One more connection to a site, with `held_elsewhere` open by other processes and nodes."""
    return held_elsewhere + held_here < limit
