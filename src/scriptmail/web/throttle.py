"""Growing delays after failed logins (pure): a few mistakes cost nothing, guessing costs time."""

from __future__ import annotations

FREE_FAILURES = 3
MAX_DELAY = 300.0


def delay_after(failures: int) -> float:
    """Seconds to wait after `failures` failed logins: 0 for the first three, then 2, 4, 8... up to 5 min."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY, 2.0 ** (failures - FREE_FAILURES + 1))


def wait_left(counts: dict[str, tuple[int, float]], now: float) -> float:
    """How long until another attempt is allowed, over every key (account and address)."""
    return max((last + delay_after(count) - now for count, last in counts.values()), default=0.0)


def gcra_take(tat: float | None, now: float, per_minute: int, burst: int) -> tuple[float, float]:
    """One API request against a token bucket that refills `per_minute` and holds `burst`, kept as
    one number, the theoretical arrival time (GCRA), so that the store keeps it in one row and
    decides in one statement (store.rate_limits does this in SQL): the new time, and 0 when the
    request may go, else the seconds until it may (the time unchanged). `tat=None`: a new token."""
    interval = 60.0 / per_minute
    candidate = max(tat if tat is not None else now, now) + interval
    if candidate - now <= burst * interval + 1e-9:
        return candidate, 0.0
    return (tat if tat is not None else now), candidate - now - burst * interval
