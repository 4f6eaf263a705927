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


def bucket_take(level: float, last: float, now: float, per_minute: int, burst: int) -> tuple[float, float]:
    """One request against a token bucket that refills `per_minute` and holds `burst`: the bucket's
    new level, and 0 when the request may go, else the seconds until it may (the level unchanged)."""
    level = min(float(burst), level + (now - last) * per_minute / 60.0)
    if level >= 1.0:
        return level - 1.0, 0.0
    return level, (1.0 - level) * 60.0 / per_minute
