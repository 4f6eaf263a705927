"""Whether a failed recipient's sender gets a notice (pure)."""

from __future__ import annotations

import enum

from scriptmail.model import HostingState

# Blocked as a compromised site: notices would go to whatever senders it forged (backscatter).
_QUIET_STATES = frozenset({HostingState.SPAM, HostingState.BOUNCE})


class Outcome(enum.StrEnum):
    """What became of a notice event; everything but SENT says why none went."""

    SENT = "sent"
    NULL_SENDER = "null-sender"
    SWITCHED_OFF = "switched-off"
    SPAM_BLOCK = "spam-block"
    HOURLY_CAP = "hourly-cap"
    OWN_MAIL = "own-mail"  # the platform's own mail (reports, notices) is never notified


def why_not(
    sender: str, state: HostingState, notices_on: bool, system: bool, sent_last_hour: int, per_hour: int
) -> Outcome | None:
    """None when the notice goes; otherwise why it does not."""
    if not sender:
        return Outcome.NULL_SENDER
    if system:
        return Outcome.OWN_MAIL
    if not notices_on:
        return Outcome.SWITCHED_OFF
    if state in _QUIET_STATES:
        return Outcome.SPAM_BLOCK
    if sent_last_hour >= per_hour:
        return Outcome.HOURLY_CAP
    return None
