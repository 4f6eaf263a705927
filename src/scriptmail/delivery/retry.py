"""The retry schedule and the reading of SMTP replies: pure functions of plain values."""

from __future__ import annotations

from dataclasses import dataclass

from scriptmail.model import RecipientStatus


@dataclass(frozen=True, slots=True)
class Schedule:
    """Postfix-like: the delay doubles from `backoff_min` up to `backoff_max`; mail older than
    `lifetime` is given up at its next failure."""

    backoff_min: float = 300
    backoff_max: float = 4000
    lifetime: float = 5 * 24 * 3600

    def delay(self, attempts: int) -> float:
        """Delay after the `attempts`-th failed attempt (1 = first failure)."""
        exponent = max(0, min(attempts - 1, 32))
        return min(self.backoff_min * (2**exponent), self.backoff_max)

    def after_failure(self, attempts: int, first_queued_at: float, now: float) -> tuple[RecipientStatus, float]:
        """Status and next attempt time after a temporary failure."""
        if now - first_queued_at >= self.lifetime:
            return RecipientStatus.EXPIRED, now
        next_at = now + self.delay(attempts)
        return RecipientStatus.DEFERRED, next_at


def status_for_reply(code: int | None) -> RecipientStatus:
    """2xx sent, 5xx bounced, anything else (4xx, no reply at all) deferred."""
    if code is not None and 200 <= code < 300:
        return RecipientStatus.SENT
    if code is not None and 500 <= code < 600:
        return RecipientStatus.BOUNCED
    return RecipientStatus.DEFERRED
