"""What a test's state means: a phase the page and the API name, and whether it is over (the
page stops asking then)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scriptmail.model import RecipientStatus

# Phases: pending (intake has not answered yet), refused (intake said no), waiting (queued or being
# retried: a quota, a deferral), held (the hosting is blocked), accepted (the receiving server took
# it), rejected (it said no for good), suppressed, purged.
_PHASES = {
    RecipientStatus.QUEUED: "waiting",
    RecipientStatus.DEFERRED: "waiting",
    RecipientStatus.SENDING: "waiting",
    RecipientStatus.HELD: "held",
    RecipientStatus.SENT: "accepted",
    RecipientStatus.BOUNCED: "rejected",
    RecipientStatus.EXPIRED: "rejected",
    RecipientStatus.SUPPRESSED: "suppressed",
    RecipientStatus.PURGED: "purged",
}
FINAL = frozenset({"refused", "held", "accepted", "rejected", "suppressed", "purged"})


def phase(row: Mapping[str, Any]) -> str:
    """The phase of a test_sends row joined with its recipient (store.test_sends.result)."""
    if row.get("refused"):
        return "refused"
    if row.get("queue_id") is None or row.get("status") is None:
        return "pending"
    try:
        return _PHASES[RecipientStatus(row["status"])]
    except ValueError:
        return "waiting"


def is_final(name: str) -> bool:
    return name in FINAL


def reply(row: Mapping[str, Any]) -> str:
    """The receiving server's answer (or intake's refusal), as one line."""
    if row.get("refused"):
        return str(row["refused"])
    return f"{row.get('last_code') or ''} {row.get('last_text') or ''}".strip()
