"""When to try a webhook message again (pure): growing delays, and giving up 24 hours after the event."""

from __future__ import annotations

# The delays come from `webhooks.retry_delays` (by default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, the
# last one repeated); the last attempt is made exactly at the end of the window.


def next_attempt(attempts: int, created_at: float, now: float, delays: tuple[int, ...], window: float) -> float | None:
    """After `attempts` failed attempts, when the next one is due; None once the window is over."""
    end = created_at + window
    if now >= end:
        return None
    delay = delays[min(attempts, len(delays)) - 1] if attempts >= 1 else 0
    return min(now + delay, end)


def success(status_code: int | None) -> bool:
    """Only a 2xx answer delivers; a redirect is not followed and counts as a failure (see sender)."""
    return status_code is not None and 200 <= status_code < 300
