"""Whether a failed recipient's sender gets a notice (pure)."""

from __future__ import annotations

import enum

from scriptmail.model import HostingState

# Blocked as a compromised site: notices would go to whatever senders it forged (backscatter).
QUIET_STATES = frozenset({HostingState.SPAM, HostingState.BOUNCE})


class Outcome(enum.StrEnum):
    """What became of a notice event; everything but SENT says why none went."""

    SENT = "sent"
    NULL_SENDER = "null-sender"
    SWITCHED_OFF = "switched-off"
    SPAM_BLOCK = "spam-block"
    HOURLY_CAP = "hourly-cap"
    OWN_MAIL = "own-mail"  # the platform's own mail (reports, notices) is never notified


def was_quiet(recorded: int | None, state_now: HostingState) -> bool:
    """Whether the hosting was blocked as spam or bounce when the recipient failed: the fact
    delivery recorded with the event; for an event older than that record, the state now."""
    return bool(recorded) if recorded is not None else state_now in QUIET_STATES


def why_not(sender: str, quiet: bool, notices_on: bool, system: bool, sent_last_hour: int, per_hour: int) -> Outcome | None:
    """None when the notice goes; otherwise why it does not. `quiet`: the hosting was blocked as
    spam or bounce when the mail failed (was_quiet)."""
    if not sender:
        return Outcome.NULL_SENDER
    if system:
        return Outcome.OWN_MAIL
    if not notices_on:
        return Outcome.SWITCHED_OFF
    if quiet:
        return Outcome.SPAM_BLOCK
    if sent_last_hour >= per_hour:
        return Outcome.HOURLY_CAP
    return None
